#!/usr/bin/env bash
# What Entra needs for the dcr-shim tenant 'contoso' (contoso.toml), written by `dcr-shim entra plan`.
# Review it, then run it signed in to the directory as an admin who may create app
# registrations and grant admin consent (Azure CLI 2.50 or newer). Running it again changes
# nothing. The tenant's redirect URI is https://auth.contoso.com/contoso/callback.
set -euo pipefail

directory='72f988bf-86f1-41af-91ab-2d7cd011db47'
if [[ "$(az account show --query tenantId -o tsv)" != "$directory" ]]; then
  echo "sign in to the directory $directory first: az login --tenant $directory --allow-no-subscriptions" >&2
  exit 1
fi

# api_app URI NAME: the appId of the app registration whose Application ID URI is URI, made
# (named NAME) when there is none.
api_app() {
  local id
  id="$(az ad app list --identifier-uri "$1" --query '[0].appId' -o tsv)"
  if [[ -z "$id" ]]; then
    id="$(az ad app create --display-name "$2" --query appId -o tsv)"
    az ad app update --id "$id" --identifier-uris "$1"
  fi
  az ad sp show --id "$id" >/dev/null 2>&1 || az ad sp create --id "$id" >/dev/null
  printf '%s\n' "$id"
}

# add_redirect_uri APP URI: adds URI to the app's Web redirect URIs, keeping the others.
add_redirect_uri() {
  local -a uris
  mapfile -t uris < <(az ad app show --id "$1" --query 'web.redirectUris[]' -o tsv)
  local u
  for u in "${uris[@]}"; do [[ "$u" == "$2" ]] && return 0; done
  az ad app update --id "$1" --web-redirect-uris "${uris[@]}" "$2"
}

# The API api://mcp-files: its scopes, and v2 access tokens (the issuer MCP servers check). The
# PATCH sets the whole list of scopes: Graph refuses to drop a scope still enabled, so
# an API that exposes others must keep them here or disable them first.
api_mcp_files="$(api_app 'api://mcp-files' 'MCP API api://mcp-files')"
az rest --method PATCH --uri "https://graph.microsoft.com/v1.0/applications(appId='$api_mcp_files')" \
  --headers Content-Type=application/json --body '{"api":{"requestedAccessTokenVersion":2,"oauth2PermissionScopes":[{"id":"2481b933-82e6-5947-a4ed-147b86b996e3","value":"files.read","type":"User","isEnabled":true,"adminConsentDisplayName":"Read your files","adminConsentDescription":"Read your files","userConsentDisplayName":"Read your files","userConsentDescription":"Read your files"},{"id":"833a4611-b52a-57a3-98e5-b5770a22af8e","value":"files.write","type":"User","isEnabled":true,"adminConsentDisplayName":"Change your files","adminConsentDescription":"Change your files","userConsentDisplayName":"Change your files","userConsentDescription":"Change your files"}]}}'

# The API https://contoso.com/mcp-mail: its scopes, and v2 access tokens (the issuer MCP servers check). The
# PATCH sets the whole list of scopes: Graph refuses to drop a scope still enabled, so
# an API that exposes others must keep them here or disable them first.
api_contoso_com_mcp_mail="$(api_app 'https://contoso.com/mcp-mail' 'MCP API https://contoso.com/mcp-mail')"
az rest --method PATCH --uri "https://graph.microsoft.com/v1.0/applications(appId='$api_contoso_com_mcp_mail')" \
  --headers Content-Type=application/json --body '{"api":{"requestedAccessTokenVersion":2,"oauth2PermissionScopes":[{"id":"3d42f2cf-3523-5fbb-85ab-5a9a25e4b23c","value":"Mail.Read","type":"User","isEnabled":true,"adminConsentDisplayName":"Mail.Read","adminConsentDescription":"Mail.Read","userConsentDisplayName":"Mail.Read","userConsentDescription":"Mail.Read"}]}}'

# The app 'cert-agents': where Entra sends the login back, what it may ask for, how it proves itself.
app_cert_agents='11111111-1111-1111-1111-111111111111'
az ad sp show --id "$app_cert_agents" >/dev/null 2>&1 || az ad sp create --id "$app_cert_agents" >/dev/null
add_redirect_uri "$app_cert_agents" 'https://auth.contoso.com/contoso/callback'
az ad app permission add --id "$app_cert_agents" --api "$api_mcp_files" --api-permissions 2481b933-82e6-5947-a4ed-147b86b996e3=Scope
az ad app permission add --id "$app_cert_agents" --api "$api_mcp_files" --api-permissions 833a4611-b52a-57a3-98e5-b5770a22af8e=Scope
az ad app permission add --id "$app_cert_agents" --api "$api_contoso_com_mcp_mail" --api-permissions 3d42f2cf-3523-5fbb-85ab-5a9a25e4b23c=Scope
az ad app permission admin-consent --id "$app_cert_agents"
az ad app credential reset --id "$app_cert_agents" --append --cert @'/etc/dcr-shim/apps/cert-agents.crt'

# The app 'cluster-agents': where Entra sends the login back, what it may ask for, how it proves itself.
app_cluster_agents='22222222-2222-2222-2222-222222222222'
az ad sp show --id "$app_cluster_agents" >/dev/null 2>&1 || az ad sp create --id "$app_cluster_agents" >/dev/null
add_redirect_uri "$app_cluster_agents" 'https://auth.contoso.com/contoso/callback'
az ad app permission add --id "$app_cluster_agents" --api "$api_mcp_files" --api-permissions 2481b933-82e6-5947-a4ed-147b86b996e3=Scope
az ad app permission admin-consent --id "$app_cluster_agents"
# Workload Identity: the cluster's OIDC issuer (az aks show --query oidcIssuerProfile.issuerUrl)
# and the shim's service account.
: "${AKS_OIDC_ISSUER:?set AKS_OIDC_ISSUER to the OIDC issuer URL of the cluster}"
az ad app federated-credential show --id "$app_cluster_agents" --federated-credential-id dcr-shim-cluster-agents >/dev/null 2>&1 \
  || az ad app federated-credential create --id "$app_cluster_agents" --parameters "{\"name\":\"dcr-shim-cluster-agents\",\"issuer\":\"$AKS_OIDC_ISSUER\",\"subject\":\"system:serviceaccount:${NAMESPACE:-dcr-shim}:${SERVICE_ACCOUNT:-dcr-shim}\",\"audiences\":[\"api://AzureADTokenExchange\"]}"

# The app 'vm-agents': where Entra sends the login back, what it may ask for, how it proves itself.
app_vm_agents='33333333-3333-3333-3333-333333333333'
az ad sp show --id "$app_vm_agents" >/dev/null 2>&1 || az ad sp create --id "$app_vm_agents" >/dev/null
add_redirect_uri "$app_vm_agents" 'https://auth.contoso.com/contoso/callback'
az ad app permission add --id "$app_vm_agents" --api "$api_mcp_files" --api-permissions 2481b933-82e6-5947-a4ed-147b86b996e3=Scope
az ad app permission add --id "$app_vm_agents" --api "$api_mcp_files" --api-permissions 833a4611-b52a-57a3-98e5-b5770a22af8e=Scope
az ad app permission add --id "$app_vm_agents" --api "$api_contoso_com_mcp_mail" --api-permissions 3d42f2cf-3523-5fbb-85ab-5a9a25e4b23c=Scope
az ad app permission admin-consent --id "$app_vm_agents"
# The managed identity the shim runs as, by its object (principal) id.
: "${MANAGED_IDENTITY_OBJECT_ID:?set MANAGED_IDENTITY_OBJECT_ID to the object id of the identity}"
az ad app federated-credential show --id "$app_vm_agents" --federated-credential-id dcr-shim-vm-agents >/dev/null 2>&1 \
  || az ad app federated-credential create --id "$app_vm_agents" --parameters "{\"name\":\"dcr-shim-vm-agents\",\"issuer\":\"https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0\",\"subject\":\"$MANAGED_IDENTITY_OBJECT_ID\",\"audiences\":[\"api://AzureADTokenExchange\"]}"

# The app 'secret-agents': where Entra sends the login back, what it may ask for, how it proves itself.
app_secret_agents='44444444-4444-4444-4444-444444444444'
az ad sp show --id "$app_secret_agents" >/dev/null 2>&1 || az ad sp create --id "$app_secret_agents" >/dev/null
add_redirect_uri "$app_secret_agents" 'https://auth.contoso.com/contoso/callback'
az ad app permission add --id "$app_secret_agents" --api "$api_mcp_files" --api-permissions 2481b933-82e6-5947-a4ed-147b86b996e3=Scope
az ad app permission add --id "$app_secret_agents" --api "$api_mcp_files" --api-permissions 833a4611-b52a-57a3-98e5-b5770a22af8e=Scope
az ad app permission add --id "$app_secret_agents" --api "$api_contoso_com_mcp_mail" --api-permissions 3d42f2cf-3523-5fbb-85ab-5a9a25e4b23c=Scope
az ad app permission admin-consent --id "$app_secret_agents"
# A client secret is made by hand, so that no script prints it; put it where the tenant
# file reads it, and note its end date (Entra refuses it afterwards, AADSTS7000222):
#   az ad app credential reset --id "$app_secret_agents" --append --display-name dcr-shim --years 1
