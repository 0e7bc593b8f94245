@description('Name of the environment; used to name resources.')
param environmentName string

@description('Azure region for every resource.')
param location string

@description('Tags for every resource.')
param tags object

@description('Client (application) ID of the app registration App Service Authentication validates tokens for.')
param apiClientId string

@description('Tenant ID of that app registration.')
param apiTenantId string

@description('Solution profile of object type codes.')
param objectTypeProfile string

@description('The organisation\'s own object types ("code:logicalname" pairs).')
param customObjectTypes string

@description('Prefix of the table names.')
param tableNamePrefix string

@secure()
@description('Keys that seal skiptokens (base64, comma-separated; the first signs).')
param skipTokenKeys string

@description('Most instances Flex Consumption may scale out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Memory of each instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

var token = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var names = {
  identity: 'id-${environmentName}'
  dataStorage: 'stdata${take(token, 17)}'
  hostStorage: 'sthost${take(token, 17)}'
  logs: 'log-${environmentName}'
  appInsights: 'appi-${environmentName}'
  plan: 'plan-${environmentName}'
  functionApp: 'func-${environmentName}-${take(token, 6)}'
  packageContainer: 'app-package-${take(token, 12)}'
}
var tableNames = [
  '${tableNamePrefix}Connections'
  '${tableNamePrefix}ConnectionRoles'
  '${tableNamePrefix}ConnectionRoleIndex'
]

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: names.identity
  location: location
  tags: tags
}

// Storage is reached only with Entra ID: shared keys off, so no connection string can work.
var storageProperties = {
  minimumTlsVersion: 'TLS1_2'
  supportsHttpsTrafficOnly: true
  allowSharedKeyAccess: false
  allowBlobPublicAccess: false
  defaultToOAuthAuthentication: true
  allowCrossTenantReplication: false
  publicNetworkAccess: 'Enabled'
  networkAcls: {
    bypass: 'AzureServices'
    defaultAction: 'Allow'
  }
  encryption: {
    keySource: 'Microsoft.Storage'
    services: {
      blob: { enabled: true }
      table: { enabled: true, keyType: 'Account' }
      queue: { enabled: true, keyType: 'Account' }
    }
  }
}

resource dataStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: names.dataStorage
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_ZRS'
  }
  properties: storageProperties
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: dataStorage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for tableName in tableNames: {
    parent: tableService
    name: tableName
  }
]

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: names.hostStorage
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: storageProperties
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: hostStorage
  name: 'default'
}

resource packageContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: names.packageContainer
  properties: {
    publicAccess: 'None'
  }
}

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: names.logs
  location: location
  tags: tags
  properties: {
    retentionInDays: 30
    sku: {
      name: 'PerGB2018'
    }
  }
}

// Keyless telemetry: local (instrumentation key) authentication off; the app signs in with its identity.
resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: names.appInsights
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: names.plan
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: names.functionApp
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostStorage.properties.primaryEndpoints.blob}${names.packageContainer}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'node'
        version: '22'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      cors: {
        allowedOrigins: []
      }
      appSettings: [
        // The host's own storage, by identity.
        { name: 'AzureWebJobsStorage__accountName', value: hostStorage.name }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identity.properties.clientId }
        // Telemetry, by identity.
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsights.properties.ConnectionString }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identity.properties.clientId};Authorization=AAD' }
        // What the app reads (shared/settings.ts), by identity.
        { name: 'DataTables__tableServiceUri', value: dataStorage.properties.primaryEndpoints.table }
        { name: 'DataTables__clientId', value: identity.properties.clientId }
        { name: 'TABLE_NAME_PREFIX', value: tableNamePrefix }
        { name: 'OBJECT_TYPE_PROFILE', value: objectTypeProfile }
        { name: 'CUSTOM_OBJECT_TYPES', value: customObjectTypes }
        // A secret, so it comes from a secure parameter and never appears in deployment history.
        { name: 'SKIPTOKEN_KEYS', value: skipTokenKeys }
      ]
    }
  }
}

// App Service Authentication: only callers with a token for the API's app registration get through,
// and the platform sets x-ms-client-principal (which the app trusts only because this is on).
resource authentication 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: [
        '/api/health'
        '/api/swagger.json'
      ]
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: apiClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${apiTenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            apiClientId
            'api://${apiClientId}'
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
    httpSettings: {
      requireHttps: true
    }
  }
}

module rbac 'rbac.bicep' = {
  name: 'rbac'
  params: {
    identityName: identity.name
    dataStorageName: dataStorage.name
    hostStorageName: hostStorage.name
    appInsightsName: appInsights.name
  }
}

output functionAppName string = functionApp.name
output apiUrl string = 'https://${functionApp.properties.defaultHostName}/api'
output tableEndpoint string = dataStorage.properties.primaryEndpoints.table
