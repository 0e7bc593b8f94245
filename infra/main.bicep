targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the environment (azd environment name); used to name and tag every resource.')
param environmentName string

@minLength(1)
@description('Azure region for every resource. Flex Consumption is available in a subset of regions.')
param location string

@description('Client (application) ID of the Microsoft Entra app registration that App Service Authentication validates tokens for.')
param apiClientId string

@description('Tenant ID of that app registration; defaults to the tenant of the deployment.')
param apiTenantId string = tenant().tenantId

@description('Solution profile of object type codes: base, customerservice or sales.')
@allowed([
  'base'
  'customerservice'
  'sales'
])
param objectTypeProfile string = 'base'

@description('The organisation\'s own object types, as "code:logicalname" pairs separated by commas.')
param customObjectTypes string = ''

@description('Prefix of the table names (empty in production).')
param tableNamePrefix string = ''

@secure()
@minLength(44)
@description('Keys that seal skiptokens: base64 of at least 32 random bytes each, separated by commas; the first signs, all verify. To rotate, put a new key first and drop the old one later.')
param skipTokenKeys string

var tags = {
  'azd-env-name': environmentName
}

resource resourceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module app 'app/resources.bicep' = {
  name: 'record-connections'
  scope: resourceGroup
  params: {
    environmentName: environmentName
    location: location
    tags: tags
    apiClientId: apiClientId
    apiTenantId: apiTenantId
    objectTypeProfile: objectTypeProfile
    customObjectTypes: customObjectTypes
    tableNamePrefix: tableNamePrefix
    skipTokenKeys: skipTokenKeys
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = resourceGroup.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.functionAppName
output API_URL string = app.outputs.apiUrl
output DATA_TABLE_ENDPOINT string = app.outputs.tableEndpoint
