//! Hostile input at every endpoint, table-driven: each case is one raw HTTP request with the
//! exact status and OAuth error it must get. Every response is also checked for what must never
//! happen (a 5xx, a hang, a `Location` outside the validated targets), and every table checks
//! that the store did not change (or changed only as the protocol says).
//!
//! Requests go over a raw TCP socket so that bytes reach the server as written: percent-encoded
//! dot segments, non-UTF-8 bytes, repeated parameters and odd headers are not normalised away.
//!
//! Cases that expose a server defect carry a `// DEFECT:` comment, assert the correct behaviour,
//! and are listed in `SKIP` so the suite stays green until the server is fixed.

mod harness;

mod authorize;
mod callback;
mod consent;
mod dev_idp;
mod discovery;
mod minted;
mod registration;
mod revoke;
mod token;
