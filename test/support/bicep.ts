import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const BICEP_VERSION = '0.49.2';
const restored = join(root, '.tools', 'nuget', 'azure.bicep.commandline.linux-x64', BICEP_VERSION, 'tools', 'bicep');

const works = (command: string): boolean => spawnSync(command, ['--version'], { encoding: 'utf8' }).status === 0;

/**
 * The Bicep compiler: BICEP_PATH, else `bicep` on PATH, else restored from NuGet with the .NET SDK
 * (pinned in infra/tools/bicep.csproj). Undefined when none of these is possible.
 */
export function findBicep(): string | undefined {
  if (process.env.BICEP_PATH && works(process.env.BICEP_PATH)) return process.env.BICEP_PATH;
  if (works('bicep')) return 'bicep';
  if (!existsSync(restored) && spawnSync('dotnet', ['--version']).status === 0) {
    execFileSync(
      'dotnet',
      ['restore', join(root, 'infra', 'tools', 'bicep.csproj'), '--packages', join(root, '.tools', 'nuget')],
      { stdio: 'pipe' },
    );
  }
  if (existsSync(restored)) {
    chmodSync(restored, 0o755);
    if (works(restored)) return restored;
  }
  return undefined;
}
