import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { notFound } from '../domain/errors';

/**
 * Static files the app serves from its own folder (the connection explorer page). Only the names in the
 * table exist: a request names a file, never a path, so nothing outside the table can be reached, and
 * `..`, slashes or encoded tricks simply match no name. Files are read on first use and kept in memory
 * (they are small, and read-only once deployed).
 */

/**
 * The app's root: the nearest folder at or above `from` holding a package.json. That is the repository
 * when running from source (functions/) or from tsc's output (dist/functions/), and deploy/ (wwwroot in
 * Azure) when running the esbuild bundle (deploy/dist/main.js), which `npm run bundle` ships the files in.
 */
export function appRoot(from: string): string {
  for (let folder = from; ; folder = dirname(folder)) {
    if (existsSync(join(folder, 'package.json'))) return folder;
    if (dirname(folder) === folder) return from;
  }
}

export interface StaticAsset {
  /** Where the file may be, first found wins (a copy shipped with the app, then node_modules). */
  paths: string[];
  contentType: string;
  cacheControl: string;
  /** Extra response headers (the page's Content-Security-Policy). */
  headers?: Record<string, string>;
}

export interface LoadedFile {
  body: Buffer;
  /** A strong ETag of the body. */
  etag: string;
  headers: Record<string, string>;
}

export class StaticFiles {
  private readonly loaded = new Map<string, LoadedFile>();

  constructor(private readonly assets: Record<string, StaticAsset>) {}

  /** The file by its name, with its headers; a variant rewrites the text (one cached copy per variant). */
  get(name: string, variant?: { key: string; rewrite: (text: string) => string }): LoadedFile {
    const asset = Object.hasOwn(this.assets, name) ? this.assets[name] : undefined;
    if (!asset) throw notFound(`The explorer has no file named ${JSON.stringify(name.slice(0, 100))}.`, 'FileNotFound');
    const cacheKey = `${name}\u0000${variant?.key ?? ''}`;
    const cached = this.loaded.get(cacheKey);
    if (cached) return cached;
    const path = asset.paths.find((candidate) => existsSync(candidate));
    if (!path) throw notFound(`The explorer's file ${name} is missing from this deployment.`, 'FileNotFound');
    const raw = readFileSync(path);
    const body = variant ? Buffer.from(variant.rewrite(raw.toString('utf8')), 'utf8') : raw;
    const file: LoadedFile = {
      body,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
      headers: {
        'content-type': asset.contentType,
        'cache-control': asset.cacheControl,
        'x-content-type-options': 'nosniff',
        ...asset.headers,
      },
    };
    this.loaded.set(cacheKey, file);
    return file;
  }
}
