#!/usr/bin/env python3
"""Tests of tools/codemap.py on small source trees made here: python3 tools/codemap_test.py"""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def tree(files):
    d = tempfile.mkdtemp(prefix="codemap-")
    for path, text in files.items():
        full = os.path.join(d, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as f:
            f.write(text)
    return d


def check(files):
    src = tree(files)
    run = subprocess.run(
        [sys.executable, os.path.join(HERE, "codemap.py"), "--check", "--src", src],
        capture_output=True, text=True)
    return run.returncode, run.stdout


class Codemap(unittest.TestCase):
    def test_a_file_circle_fails_and_is_named(self):
        code, out = check({
            "lib.rs": "pub mod oauth;\n",
            "oauth/mod.rs": "pub mod a;\npub mod b;\n",
            "oauth/a.rs": "use super::b::B;\npub struct A;\n",
            "oauth/b.rs": "pub struct B;\nfn f() { let _ = crate::oauth::a::A; }\n",
        })
        self.assertEqual(code, 1, out)
        self.assertIn("oauth/a.rs <-> oauth/b.rs", out)

    def test_braces_self_and_super_are_followed(self):
        code, out = check({
            "lib.rs": "pub mod oauth;\n",
            "oauth/mod.rs": "pub mod a;\npub mod b;\npub mod c;\n",
            "oauth/a.rs": "use super::{b::{self, B}, c::C};\npub struct A;\n",
            "oauth/c.rs": "pub struct C;\n",
            "oauth/b.rs": "use super::c::C;\npub struct B;\n#[cfg(test)]\nmod tests { use super::super::a::A; }\n",
        })
        self.assertEqual(code, 0, out)
        code, out = check({
            "lib.rs": "pub mod oauth;\n",
            "oauth/mod.rs": "pub mod a;\npub mod b;\n",
            "oauth/a.rs": "use super::{b::{self, B}};\npub struct A;\n",
            "oauth/b.rs": "pub struct B;\nfn f() { let _ = super::a::A; }\n",
        })
        self.assertEqual(code, 1, out)

    def test_a_module_face_is_not_an_importer(self):
        # mod.rs re-exports its children; a child uses the re-export: no circle.
        code, out = check({
            "lib.rs": "pub mod config;\n",
            "config/mod.rs": "pub mod tenant;\npub mod host;\npub use host::Host;\npub use tenant::Tenant;\n",
            "config/host.rs": "pub struct Host;\n",
            "config/tenant.rs": "use crate::config::Host;\npub struct Tenant(Host);\n",
        })
        self.assertEqual(code, 0, out)

    def test_a_parent_naming_a_child_whose_file_uses_the_parent_is_a_circle(self):
        code, out = check({
            "lib.rs": "pub mod http;\n",
            "http/mod.rs": "mod token;\npub fn client_value() {}\nfn routes() { token::token(); }\n",
            "http/token.rs": "use super::client_value;\npub fn token() { client_value(); }\n",
        })
        self.assertEqual(code, 1, out)
        self.assertIn("http/mod.rs <-> http/token.rs", out)

    def test_a_face_that_uses_its_own_re_export_imports_it(self):
        code, out = check({
            "lib.rs": "pub mod store;\n",
            "store/mod.rs": "mod sled;\npub use sled::Sled;\npub trait Store {}\npub fn open() { Sled::open(); }\n",
            "store/sled.rs": "use super::Store;\npub struct Sled;\nimpl Sled { pub fn open() {} }\n",
        })
        self.assertEqual(code, 1, out)
        self.assertIn("store/mod.rs <-> store/sled.rs", out)

    def test_an_arrow_against_the_layers_fails(self):
        code, out = check({
            "lib.rs": "pub mod config;\npub mod http;\n",
            "config/mod.rs": "pub const N: u32 = crate::http::DEFAULT;\n",
            "http/mod.rs": "pub const DEFAULT: u32 = 1;\n",
        })
        self.assertEqual(code, 1, out)
        self.assertIn("config/mod.rs -> http/mod.rs: config is below http", out)

    def test_a_module_without_a_layer_is_named(self):
        code, out = check({
            "lib.rs": "pub mod shiny;\npub mod oauth;\n",
            "shiny.rs": "use crate::oauth::X;\n",
            "oauth/mod.rs": "pub struct X;\n",
        })
        self.assertEqual(code, 1, out)
        self.assertIn("shiny has no layer", out)

    def test_comments_strings_and_other_crates_are_not_imports(self):
        code, out = check({
            "lib.rs": "pub mod config;\npub mod http;\n",
            "config/mod.rs": "// crate::http::X is not used\nconst S: &str = \"crate::http::X\";\nuse serde::Deserialize;\n",
            "http/mod.rs": "pub struct X;\n",
        })
        self.assertEqual(code, 0, out)


if __name__ == "__main__":
    unittest.main()
