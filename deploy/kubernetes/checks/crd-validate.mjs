// Validates the custom resources that validate.py set aside (ServiceMonitor, PrometheusRule,
// HTTPRoute) with the @kubernetes-models validators, which are generated from the upstream
// projects' API definitions: required fields, types, enums, patterns and bounds. They do not
// reject unknown fields (neither does the API server for these CRDs: it prunes them), so a
// misspelt optional field passes here; check.sh says so.
//
//   node crd-validate.mjs CRDS.json
//
// check.sh copies this file next to the node_modules it installs, so that the package names
// below resolve there.

import { readFileSync } from "node:fs";

const models = {
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/",
  "gateway.networking.k8s.io/v1": "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/",
};

const items = JSON.parse(readFileSync(process.argv[2], "utf8"));
let failures = 0;
for (const { file, object } of items) {
  const name = `${object.kind}/${object.metadata?.name} in ${file}`;
  const prefix = models[object.apiVersion];
  if (!prefix) {
    console.log(`ERROR ${name}: no validator for ${object.apiVersion}`);
    failures++;
    continue;
  }
  let Model;
  try {
    Model = (await import(prefix + object.kind))[object.kind];
  } catch (e) {
    console.log(`ERROR ${name}: no validator for ${object.apiVersion} ${object.kind}: ${e.message}`);
    failures++;
    continue;
  }
  try {
    new Model(object).validate();
    console.log(`  ${object.apiVersion} ${name}: valid`);
  } catch (e) {
    console.log(`ERROR ${name}: ${e.message}`);
    failures++;
  }
}
if (failures > 0) {
  console.log(`${failures} custom resource(s) invalid`);
  process.exit(1);
}
