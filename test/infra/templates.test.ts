import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../support/json';
import { appSettingNames, localOnlySettings } from '../../shared/config/settings';
import { findBicep } from '../support/bicep';

const infra = join(__dirname, '..', '..', 'infra');
const bicep = findBicep();

function bicepFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? bicepFiles(join(folder, entry.name))
      : entry.name.endsWith('.bicep')
        ? [join(folder, entry.name)]
        : [],
  );
}

/**
 * Every resource a compiled template deploys (references to `existing` ones left out), nested
 * deployments (modules) included, each with its template's variables for resolving references.
 */
function resourcesOf(template: Json): Json[] {
  const own = Object.values<Json>(template.resources ?? {});
  return own.flatMap((resource) => {
    if (resource.existing) return [];
    if (resource.type === 'Microsoft.Resources/deployments')
      return [resource, ...resourcesOf(resource.properties.template)];
    return [{ ...resource, variablesInScope: template.variables ?? {} }];
  });
}

/** A role assignment's role definition id, with `variables('roleIds').name` resolved. */
function roleIdOf(assignment: Json): string {
  const expression = String(assignment.properties.roleDefinitionId);
  const variable = /variables\('roleIds'\)\.(\w+)/.exec(expression)?.[1];
  return variable ? String(assignment.variablesInScope.roleIds?.[variable]) : expression;
}

if (!bicep) {
  describe('the Bicep templates', () => {
    it('could not be compiled here: no Bicep compiler and no .NET SDK to restore it', () => {
      console.warn(
        '\n*** infra/ NOT CHECKED: install the .NET SDK (dotnet restore fetches the pinned Bicep compiler) or put bicep on PATH, or set BICEP_PATH. ***\n',
      );
      // CI always has the .NET SDK: there, not finding the compiler is a failure.
      expect(process.env.CI).toBeFalsy();
    });
  });
} else {
  describe('the Bicep templates', () => {
    let resources: Json[] = [];
    let compiled: Json;

    beforeAll(() => {
      const out = mkdtempSync(join(tmpdir(), 'bicep-'));
      execFileSync(bicep, ['build', join(infra, 'main.bicep'), '--outdir', out], { stdio: 'pipe' });
      compiled = JSON.parse(readFileSync(join(out, 'main.json'), 'utf8')) as Json;
      resources = resourcesOf(compiled);
    }, 120_000);

    it('compile and lint with no error and no warning', () => {
      for (const file of bicepFiles(infra)) {
        for (const command of ['build', 'lint']) {
          const args = command === 'build' ? ['build', file, '--stdout'] : ['lint', file];
          const result = spawnSync(bicep, args, { encoding: 'utf8' });
          expect(result.status, `${command} ${relative(infra, file)}: ${result.stderr}`).toBe(0);
          expect(result.stderr.trim(), `${command} ${relative(infra, file)}`).toBe('');
        }
      }
    }, 240_000);

    const ofType = (type: string) => resources.filter((resource) => resource.type === type);

    it('lock storage down: Entra ID only, TLS 1.2, HTTPS only, no public blobs', () => {
      const accounts = ofType('Microsoft.Storage/storageAccounts');
      expect(accounts.length).toBe(2);
      for (const account of accounts) {
        expect(account.kind).toBe('StorageV2');
        const shared = /^\[variables\('(\w+)'\)\]$/.exec(String(account.properties))?.[1];
        const properties = shared ? account.variablesInScope[shared] : account.properties;
        expect(properties).toMatchObject({
          allowSharedKeyAccess: false,
          minimumTlsVersion: 'TLS1_2',
          supportsHttpsTrafficOnly: true,
          allowBlobPublicAccess: false,
        });
      }
      const tables = ofType('Microsoft.Storage/storageAccounts/tableServices/tables');
      expect(tables).toHaveLength(1);
      expect(JSON.stringify(compiled)).toContain('ConnectionRoleIndex');
    });

    it('run the app on Flex Consumption, Node 22, HTTPS only, no FTP, with a user-assigned identity', () => {
      const [plan] = ofType('Microsoft.Web/serverfarms');
      expect(plan?.sku).toEqual({ name: 'FC1', tier: 'FlexConsumption' });
      const [site] = ofType('Microsoft.Web/sites');
      expect(site?.identity.type).toBe('UserAssigned');
      expect(site?.properties.httpsOnly).toBe(true);
      expect(site?.properties.functionAppConfig.runtime).toEqual({ name: 'node', version: '22' });
      expect(site?.properties.functionAppConfig.deployment.storage.authentication.type).toBe('UserAssignedIdentity');
      expect(site?.properties.siteConfig).toMatchObject({ ftpsState: 'Disabled', minTlsVersion: '1.2' });
    });

    it('put no key or connection string in any app setting, and reach storage by identity', () => {
      const [site] = ofType('Microsoft.Web/sites');
      const settings = site?.properties.siteConfig.appSettings as { name: string; value: string }[];
      const text = JSON.stringify(settings);
      expect(text).not.toMatch(
        /AccountKey|listKeys|DefaultEndpointsProtocol|SharedAccessSignature|InstrumentationKey=/,
      );
      const names = settings.map((setting) => setting.name);
      expect(names).not.toContain('AzureWebJobsStorage');
      expect(names).toEqual(
        expect.arrayContaining([
          'AzureWebJobsStorage__accountName',
          'AzureWebJobsStorage__credential',
          'AzureWebJobsStorage__clientId',
        ]),
      );
      expect(settings.find((setting) => setting.name === 'AzureWebJobsStorage__credential')?.value).toBe(
        'managedidentity',
      );
      expect(
        names.some((name) => /connectionstring$/i.test(name) && name !== 'APPLICATIONINSIGHTS_CONNECTION_STRING'),
      ).toBe(false);
      const [insights] = ofType('Microsoft.Insights/components');
      expect(insights?.properties.DisableLocalAuth).toBe(true);
      expect(settings.find((setting) => setting.name === 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING')?.value).toContain(
        'Authorization=AAD',
      );
    });

    it('set exactly the settings the app reads (and local.settings.sample.json lists)', () => {
      const [site] = ofType('Microsoft.Web/sites');
      const names = (site?.properties.siteConfig.appSettings as { name: string }[]).map((setting) => setting.name);
      const appSettings = names.filter(
        (name) => !name.startsWith('AzureWebJobsStorage') && !name.startsWith('APPLICATIONINSIGHTS_'),
      );
      expect(appSettings.sort()).toEqual(appSettingNames.filter((name) => !localOnlySettings.includes(name)).sort());
      const sample = JSON.parse(readFileSync(join(infra, '..', 'local.settings.sample.json'), 'utf8')) as {
        Values: Record<string, string>;
      };
      for (const name of appSettings) expect(Object.keys(sample.Values)).toContain(name);
    });

    it('take the skiptoken keys from a secure parameter, never from a value in the template', () => {
      const [site] = ofType('Microsoft.Web/sites');
      const setting = (site?.properties.siteConfig.appSettings as { name: string; value: string }[]).find(
        (candidate) => candidate.name === 'SKIPTOKEN_KEYS',
      );
      expect(setting?.value).toBe("[parameters('skipTokenKeys')]");
      expect(compiled.parameters.skipTokenKeys).toMatchObject({ type: 'securestring' });
      expect(compiled.parameters.skipTokenKeys.defaultValue).toBeUndefined();
      const app = resources.find((resource) => resource.type === 'Microsoft.Resources/deployments');
      expect(app?.properties.template.parameters.skipTokenKeys.type).toBe('securestring');
    });

    it('grant the identity exactly its roles, one assignment per role and scope', () => {
      const assignments = ofType('Microsoft.Authorization/roleAssignments');
      const roles = {
        tableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
        blobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
        queueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
        metricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
      };
      expect(assignments.map(roleIdOf).sort()).toEqual(Object.values(roles).sort());
      for (const assignment of assignments) {
        expect(assignment.properties.principalType).toBe('ServicePrincipal');
        expect(assignment.name).toMatch(/^\[guid\(/);
        expect(assignment.scope).toBeDefined();
      }
      // Table Data Contributor is scoped to the data account, the blob and queue roles to the host account.
      const scopeOf = (role: string) =>
        assignments.find((assignment) => roleIdOf(assignment) === role)?.scope as string;
      expect(scopeOf(roles.tableDataContributor)).toContain("parameters('dataStorageName')");
      expect(scopeOf(roles.blobDataOwner)).toContain("parameters('hostStorageName')");
      expect(scopeOf(roles.queueDataContributor)).toContain("parameters('hostStorageName')");
      expect(scopeOf(roles.metricsPublisher)).toContain('Microsoft.Insights/components');
    });

    it('require authentication with Microsoft Entra ID in front of the app', () => {
      const [auth] = ofType('Microsoft.Web/sites/config');
      expect(auth?.name).toContain('authsettingsV2');
      expect(auth?.properties.platform.enabled).toBe(true);
      expect(auth?.properties.globalValidation).toMatchObject({
        requireAuthentication: true,
        unauthenticatedClientAction: 'Return401',
      });
      expect(auth?.properties.identityProviders.azureActiveDirectory.enabled).toBe(true);
    });

    it('give azd and the README what they need: outputs and the service tag', () => {
      expect(Object.keys(compiled.outputs)).toEqual(
        expect.arrayContaining(['API_URL', 'AZURE_FUNCTION_APP_NAME', 'AZURE_RESOURCE_GROUP', 'AZURE_LOCATION']),
      );
      const [site] = ofType('Microsoft.Web/sites');
      expect(JSON.stringify(site?.tags)).toContain('azd-service-name');
      const parameters = JSON.parse(readFileSync(join(infra, 'main.parameters.json'), 'utf8')) as Json;
      for (const name of Object.keys(parameters.parameters)) expect(Object.keys(compiled.parameters)).toContain(name);
    });
  });
}
