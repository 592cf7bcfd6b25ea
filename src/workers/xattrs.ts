/** Reading a path's extended attributes (POSIX ACLs included) without following symlinks. */
import { getXattr, listXattrs } from '../native/index.js';
import { errnoCode } from '../core/errors.js';

/** name → base64 value, names sorted; undefined when there are none or the filesystem has none. */
export function readXattrs(path: string): Record<string, string> | undefined {
  let names: string[];
  try {
    names = listXattrs(path);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOENT') return undefined;
    throw err;
  }
  if (names.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const name of names.sort()) {
    try {
      out[name] = getXattr(path, name).toString('base64');
    } catch (err) {
      if (errnoCode(err) !== 'ENODATA') throw err; // removed meanwhile
    }
  }
  return out;
}
