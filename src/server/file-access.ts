/**
 * Who may read what, as the protected host's kernel would have decided at the recovery point:
 * the recorded owner, group, mode bits and POSIX access ACL (the `system.posix_acl_access`
 * extended attribute, kept in the kernel's binary form) against a portal user's uid and groups.
 */

/** What one check needs of a recorded entry. */
export interface Recorded {
  mode: number;
  uid: number;
  gid: number;
  /** base64 of system.posix_acl_access, if the entry had one */
  acl?: string | null;
}

export interface Principal {
  uid: number;
  /** every group the account is in, its primary group included */
  gids: readonly number[];
}

const R = 4;
const W = 2;
const X = 1;

const ACL_USER_OBJ = 0x01;
const ACL_USER = 0x02;
const ACL_GROUP_OBJ = 0x04;
const ACL_GROUP = 0x08;
const ACL_MASK = 0x10;
const ACL_OTHER = 0x20;
const ACL_VERSION = 2;

interface AclEntry {
  tag: number;
  perm: number;
  id: number;
}

/** The entries of a kernel ACL xattr value (u32 version, then u16 tag, u16 perm, u32 id), or undefined if malformed. */
export function decodeAcl(b64: string): AclEntry[] | undefined {
  const buf = Buffer.from(b64, 'base64');
  if (buf.length < 4 || (buf.length - 4) % 8 !== 0 || buf.readUInt32LE(0) !== ACL_VERSION) return undefined;
  const out: AclEntry[] = [];
  for (let o = 4; o < buf.length; o += 8) out.push({ tag: buf.readUInt16LE(o), perm: buf.readUInt16LE(o + 2) & 7, id: buf.readUInt32LE(o + 4) });
  return out;
}

/** True when every bit of `want` (r=4, w=2, x=1) was granted to the principal (acl(5)'s access check). */
export function permits(e: Recorded, who: Principal, want: number): boolean {
  const inGroup = (g: number): boolean => who.gids.includes(g);
  const acl = e.acl ? decodeAcl(e.acl) : undefined;
  if (e.acl && !acl) return false; // an ACL we cannot read grants nothing
  if (!acl || acl.length === 0) {
    const bits = who.uid === e.uid ? (e.mode >> 6) & 7 : inGroup(e.gid) ? (e.mode >> 3) & 7 : e.mode & 7;
    return (bits & want) === want;
  }
  const mask = acl.find((a) => a.tag === ACL_MASK)?.perm ?? 7;
  const has = (perm: number): boolean => (perm & want) === want;
  if (who.uid === e.uid) return has(acl.find((a) => a.tag === ACL_USER_OBJ)?.perm ?? 0);
  const named = acl.find((a) => a.tag === ACL_USER && a.id === who.uid);
  if (named) return has(named.perm & mask);
  const groups = acl.filter((a) => (a.tag === ACL_GROUP_OBJ && inGroup(e.gid)) || (a.tag === ACL_GROUP && inGroup(a.id)));
  if (groups.length > 0) return groups.some((g) => has(g.perm & mask));
  return has(acl.find((a) => a.tag === ACL_OTHER)?.perm ?? 0);
}

export const canRead = (e: Recorded, who: Principal): boolean => permits(e, who, R);
/** search (execute) permission on a directory: needed on every parent of what is read */
export const canSearch = (e: Recorded, who: Principal): boolean => permits(e, who, X);
/** listing a directory needs read and search */
export const canList = (e: Recorded, who: Principal): boolean => permits(e, who, R | X);
/** making an entry in a directory needs write and search on it */
export const canCreate = (e: Recorded, who: Principal): boolean => permits(e, who, W | X);
