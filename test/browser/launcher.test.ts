import { describe, expect, it } from 'vitest';
import { chromiumPath } from '../support/browser';

// Without a browser the browser tests fail with this message; they never skip.
describe('finding Chromium for the browser tests', () => {
  it('fails, saying how to install one, when none is installed', () => {
    expect(() => chromiumPath(undefined, ['/nowhere/chromium'])).toThrow(
      /No Chromium found.*apt-get install -y chromium.*CHROMIUM_PATH/,
    );
  });

  it('fails when CHROMIUM_PATH names nothing, and takes it when it does', () => {
    expect(() => chromiumPath('/nowhere/chrome')).toThrow('CHROMIUM_PATH is /nowhere/chrome, which does not exist.');
    expect(chromiumPath(process.execPath, [])).toBe(process.execPath);
  });

  it('takes the first installed one of the usual places', () => {
    expect(chromiumPath(undefined, ['/nowhere/chromium', process.execPath])).toBe(process.execPath);
  });
});
