# What Entra needs for the dcr-shim tenant 'contoso' (contoso.toml), written by `dcr-shim entra plan`.
# Review it, then `terraform init && terraform apply` as an admin of directory 72f988bf-86f1-41af-91ab-2d7cd011db47.
# The apps of the tenant file exist already (found by client id); the APIs are created.
terraform {
  required_providers {
    azuread = {
      source  = "hashicorp/azuread"
      version = ">= 2.51"
    }
  }
}

provider "azuread" {
  tenant_id = "72f988bf-86f1-41af-91ab-2d7cd011db47"
}

variable "aks_oidc_issuer" {
  description = "The AKS cluster's OIDC issuer URL (az aks show --query oidcIssuerProfile.issuerUrl)"
  type        = string
}

variable "service_account_subject" {
  description = "The shim's Kubernetes service account"
  type        = string
  default     = "system:serviceaccount:dcr-shim:dcr-shim"
}

variable "managed_identity_object_id" {
  description = "The object (principal) id of the managed identity the shim runs as"
  type        = string
}

# The API api://mcp-files: its scopes, and v2 access tokens (the issuer MCP servers check).
resource "azuread_application_registration" "api_mcp_files" {
  display_name                   = "MCP API api://mcp-files"
  requested_access_token_version = 2
}

resource "azuread_application_identifier_uri" "api_mcp_files" {
  application_id = azuread_application_registration.api_mcp_files.id
  identifier_uri = "api://mcp-files"
}

resource "azuread_service_principal" "api_mcp_files" {
  client_id = azuread_application_registration.api_mcp_files.client_id
}

resource "azuread_application_permission_scope" "api_mcp_files_files_read" {
  application_id             = azuread_application_registration.api_mcp_files.id
  scope_id                   = "2481b933-82e6-5947-a4ed-147b86b996e3"
  value                      = "files.read"
  type                       = "User"
  admin_consent_display_name = "Read your files"
  admin_consent_description  = "Read your files"
  user_consent_display_name  = "Read your files"
  user_consent_description   = "Read your files"
}

resource "azuread_application_permission_scope" "api_mcp_files_files_write" {
  application_id             = azuread_application_registration.api_mcp_files.id
  scope_id                   = "833a4611-b52a-57a3-98e5-b5770a22af8e"
  value                      = "files.write"
  type                       = "User"
  admin_consent_display_name = "Change your files"
  admin_consent_description  = "Change your files"
  user_consent_display_name  = "Change your files"
  user_consent_description   = "Change your files"
}

# The API https://contoso.com/mcp-mail: its scopes, and v2 access tokens (the issuer MCP servers check).
resource "azuread_application_registration" "api_contoso_com_mcp_mail" {
  display_name                   = "MCP API https://contoso.com/mcp-mail"
  requested_access_token_version = 2
}

resource "azuread_application_identifier_uri" "api_contoso_com_mcp_mail" {
  application_id = azuread_application_registration.api_contoso_com_mcp_mail.id
  identifier_uri = "https://contoso.com/mcp-mail"
}

resource "azuread_service_principal" "api_contoso_com_mcp_mail" {
  client_id = azuread_application_registration.api_contoso_com_mcp_mail.client_id
}

resource "azuread_application_permission_scope" "api_contoso_com_mcp_mail_mail_read" {
  application_id             = azuread_application_registration.api_contoso_com_mcp_mail.id
  scope_id                   = "3d42f2cf-3523-5fbb-85ab-5a9a25e4b23c"
  value                      = "Mail.Read"
  type                       = "User"
  admin_consent_display_name = "Mail.Read"
  admin_consent_description  = "Mail.Read"
  user_consent_display_name  = "Mail.Read"
  user_consent_description   = "Mail.Read"
}

# The app 'cert-agents': where Entra sends the login back, what it may ask for, how it proves itself.
data "azuread_application" "app_cert_agents" {
  client_id = "11111111-1111-1111-1111-111111111111"
}

# This resource owns the app's whole list of Web redirect URIs: add any others it needs here.
resource "azuread_application_redirect_uris" "app_cert_agents" {
  application_id = data.azuread_application.app_cert_agents.id
  type           = "Web"
  redirect_uris  = ["https://auth.contoso.com/contoso/callback"]
}

resource "azuread_application_api_access" "app_cert_agents_api_mcp_files" {
  application_id = data.azuread_application.app_cert_agents.id
  api_client_id  = azuread_application_registration.api_mcp_files.client_id
  scope_ids      = ["2481b933-82e6-5947-a4ed-147b86b996e3", "833a4611-b52a-57a3-98e5-b5770a22af8e"]
  depends_on     = [azuread_application_permission_scope.api_mcp_files_files_read, azuread_application_permission_scope.api_mcp_files_files_write]
}

# Admin consent for the directory's users.
resource "azuread_service_principal_delegated_permission_grant" "app_cert_agents_api_mcp_files" {
  service_principal_object_id          = azuread_service_principal.app_cert_agents.object_id
  resource_service_principal_object_id = azuread_service_principal.api_mcp_files.object_id
  claim_values                         = ["files.read", "files.write"]
  depends_on                           = [azuread_application_permission_scope.api_mcp_files_files_read, azuread_application_permission_scope.api_mcp_files_files_write]
}

resource "azuread_application_api_access" "app_cert_agents_api_contoso_com_mcp_mail" {
  application_id = data.azuread_application.app_cert_agents.id
  api_client_id  = azuread_application_registration.api_contoso_com_mcp_mail.client_id
  scope_ids      = ["3d42f2cf-3523-5fbb-85ab-5a9a25e4b23c"]
  depends_on     = [azuread_application_permission_scope.api_contoso_com_mcp_mail_mail_read]
}

# Admin consent for the directory's users.
resource "azuread_service_principal_delegated_permission_grant" "app_cert_agents_api_contoso_com_mcp_mail" {
  service_principal_object_id          = azuread_service_principal.app_cert_agents.object_id
  resource_service_principal_object_id = azuread_service_principal.api_contoso_com_mcp_mail.object_id
  claim_values                         = ["Mail.Read"]
  depends_on                           = [azuread_application_permission_scope.api_contoso_com_mcp_mail_mail_read]
}

resource "azuread_service_principal" "app_cert_agents" {
  client_id    = "11111111-1111-1111-1111-111111111111"
  use_existing = true
}

resource "azuread_application_certificate" "app_cert_agents" {
  application_id = data.azuread_application.app_cert_agents.id
  type           = "AsymmetricX509Cert"
  value          = file("/etc/dcr-shim/apps/cert-agents.crt")
}

# The app 'cluster-agents': where Entra sends the login back, what it may ask for, how it proves itself.
data "azuread_application" "app_cluster_agents" {
  client_id = "22222222-2222-2222-2222-222222222222"
}

# This resource owns the app's whole list of Web redirect URIs: add any others it needs here.
resource "azuread_application_redirect_uris" "app_cluster_agents" {
  application_id = data.azuread_application.app_cluster_agents.id
  type           = "Web"
  redirect_uris  = ["https://auth.contoso.com/contoso/callback"]
}

resource "azuread_application_api_access" "app_cluster_agents_api_mcp_files" {
  application_id = data.azuread_application.app_cluster_agents.id
  api_client_id  = azuread_application_registration.api_mcp_files.client_id
  scope_ids      = ["2481b933-82e6-5947-a4ed-147b86b996e3"]
  depends_on     = [azuread_application_permission_scope.api_mcp_files_files_read]
}

# Admin consent for the directory's users.
resource "azuread_service_principal_delegated_permission_grant" "app_cluster_agents_api_mcp_files" {
  service_principal_object_id          = azuread_service_principal.app_cluster_agents.object_id
  resource_service_principal_object_id = azuread_service_principal.api_mcp_files.object_id
  claim_values                         = ["files.read"]
  depends_on                           = [azuread_application_permission_scope.api_mcp_files_files_read]
}

resource "azuread_service_principal" "app_cluster_agents" {
  client_id    = "22222222-2222-2222-2222-222222222222"
  use_existing = true
}

resource "azuread_application_federated_identity_credential" "app_cluster_agents" {
  application_id = data.azuread_application.app_cluster_agents.id
  display_name   = "dcr-shim-cluster-agents"
  issuer         = var.aks_oidc_issuer
  subject        = var.service_account_subject
  audiences      = ["api://AzureADTokenExchange"]
}

# The app 'vm-agents': where Entra sends the login back, what it may ask for, how it proves itself.
data "azuread_application" "app_vm_agents" {
  client_id = "33333333-3333-3333-3333-333333333333"
}

# This resource owns the app's whole list of Web redirect URIs: add any others it needs here.
resource "azuread_application_redirect_uris" "app_vm_agents" {
  application_id = data.azuread_application.app_vm_agents.id
  type           = "Web"
  redirect_uris  = ["https://auth.contoso.com/contoso/callback"]
}

resource "azuread_application_api_access" "app_vm_agents_api_mcp_files" {
  application_id = data.azuread_application.app_vm_agents.id
  api_client_id  = azuread_application_registration.api_mcp_files.client_id
  scope_ids      = ["2481b933-82e6-5947-a4ed-147b86b996e3", "833a4611-b52a-57a3-98e5-b5770a22af8e"]
  depends_on     = [azuread_application_permission_scope.api_mcp_files_files_read, azuread_application_permission_scope.api_mcp_files_files_write]
}

# Admin consent for the directory's users.
resource "azuread_service_principal_delegated_permission_grant" "app_vm_agents_api_mcp_files" {
  service_principal_object_id          = azuread_service_principal.app_vm_agents.object_id
  resource_service_principal_object_id = azuread_service_principal.api_mcp_files.object_id
  claim_values                         = ["files.read", "files.write"]
  depends_on                           = [azuread_application_permission_scope.api_mcp_files_files_read, azuread_application_permission_scope.api_mcp_files_files_write]
}

resource "azuread_application_api_access" "app_vm_agents_api_contoso_com_mcp_mail" {
  application_id = data.azuread_application.app_vm_agents.id
  api_client_id  = azuread_application_registration.api_contoso_com_mcp_mail.client_id
  scope_ids      = ["3d42f2cf-3523-5fbb-85ab-5a9a25e4b23c"]
  depends_on     = [azuread_application_permission_scope.api_contoso_com_mcp_mail_mail_read]
}

# Admin consent for the directory's users.
resource "azuread_service_principal_delegated_permission_grant" "app_vm_agents_api_contoso_com_mcp_mail" {
  service_principal_object_id          = azuread_service_principal.app_vm_agents.object_id
  resource_service_principal_object_id = azuread_service_principal.api_contoso_com_mcp_mail.object_id
  claim_values                         = ["Mail.Read"]
  depends_on                           = [azuread_application_permission_scope.api_contoso_com_mcp_mail_mail_read]
}

resource "azuread_service_principal" "app_vm_agents" {
  client_id    = "33333333-3333-3333-3333-333333333333"
  use_existing = true
}

resource "azuread_application_federated_identity_credential" "app_vm_agents" {
  application_id = data.azuread_application.app_vm_agents.id
  display_name   = "dcr-shim-vm-agents"
  issuer         = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"
  subject        = var.managed_identity_object_id
  audiences      = ["api://AzureADTokenExchange"]
}

# The app 'secret-agents': where Entra sends the login back, what it may ask for, how it proves itself.
data "azuread_application" "app_secret_agents" {
  client_id = "44444444-4444-4444-4444-444444444444"
}

# This resource owns the app's whole list of Web redirect URIs: add any others it needs here.
resource "azuread_application_redirect_uris" "app_secret_agents" {
  application_id = data.azuread_application.app_secret_agents.id
  type           = "Web"
  redirect_uris  = ["https://auth.contoso.com/contoso/callback"]
}

resource "azuread_application_api_access" "app_secret_agents_api_mcp_files" {
  application_id = data.azuread_application.app_secret_agents.id
  api_client_id  = azuread_application_registration.api_mcp_files.client_id
  scope_ids      = ["2481b933-82e6-5947-a4ed-147b86b996e3", "833a4611-b52a-57a3-98e5-b5770a22af8e"]
  depends_on     = [azuread_application_permission_scope.api_mcp_files_files_read, azuread_application_permission_scope.api_mcp_files_files_write]
}

# Admin consent for the directory's users.
resource "azuread_service_principal_delegated_permission_grant" "app_secret_agents_api_mcp_files" {
  service_principal_object_id          = azuread_service_principal.app_secret_agents.object_id
  resource_service_principal_object_id = azuread_service_principal.api_mcp_files.object_id
  claim_values                         = ["files.read", "files.write"]
  depends_on                           = [azuread_application_permission_scope.api_mcp_files_files_read, azuread_application_permission_scope.api_mcp_files_files_write]
}

resource "azuread_application_api_access" "app_secret_agents_api_contoso_com_mcp_mail" {
  application_id = data.azuread_application.app_secret_agents.id
  api_client_id  = azuread_application_registration.api_contoso_com_mcp_mail.client_id
  scope_ids      = ["3d42f2cf-3523-5fbb-85ab-5a9a25e4b23c"]
  depends_on     = [azuread_application_permission_scope.api_contoso_com_mcp_mail_mail_read]
}

# Admin consent for the directory's users.
resource "azuread_service_principal_delegated_permission_grant" "app_secret_agents_api_contoso_com_mcp_mail" {
  service_principal_object_id          = azuread_service_principal.app_secret_agents.object_id
  resource_service_principal_object_id = azuread_service_principal.api_contoso_com_mcp_mail.object_id
  claim_values                         = ["Mail.Read"]
  depends_on                           = [azuread_application_permission_scope.api_contoso_com_mcp_mail_mail_read]
}

resource "azuread_service_principal" "app_secret_agents" {
  client_id    = "44444444-4444-4444-4444-444444444444"
  use_existing = true
}

# A client secret is made by hand (azuread_application_password would keep it in the
# Terraform state); put it where the tenant file reads it, and note its end date.
