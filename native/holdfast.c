/*
 * holdfast_native: the Linux file-system calls that Node's fs lacks and that a faithful backup
 * and restore need (extended attributes and ACLs without following symlinks, SEEK_DATA/SEEK_HOLE
 * for sparse files, device and fifo nodes, nanosecond times on symlinks), and the content-defined
 * chunker's inner loop, which JavaScript runs several times slower; and process spawning without
 * fork (see spawnProcess). All synchronous but listDirStatsAsync and a spawned child's exit.
 *
 * Failed system calls throw an Error shaped like Node's fs errors: code (errno name), errno
 * (negative), syscall, path (when there is one) and the message "CODE: text, syscall 'path'".
 * Bad arguments throw TypeError/RangeError with Node's ERR_* codes; the TypeScript wrapper
 * checks them first, the checks here keep the addon safe on its own.
 */
#include <node_api.h>

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAFE_OFFSET 9007199254740992.0 /* 2^53 */
#define MAX_ERANGE_RETRIES 16

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                      */

typedef struct {
  int code;
  const char *name;
  const char *text;
} errno_entry;

/* Names and texts as Node (libuv) reports them, so callers can treat these like fs errors. */
static const errno_entry errno_table[] = {
    {E2BIG, "E2BIG", "argument list too long"},
    {EACCES, "EACCES", "permission denied"},
    {EAGAIN, "EAGAIN", "resource temporarily unavailable"},
    {EBADF, "EBADF", "bad file descriptor"},
    {EBUSY, "EBUSY", "resource busy or locked"},
    {EDQUOT, "EDQUOT", "disk quota exceeded"},
    {EEXIST, "EEXIST", "file already exists"},
    {EFAULT, "EFAULT", "bad address in system call argument"},
    {EFBIG, "EFBIG", "file too large"},
    {EINTR, "EINTR", "interrupted system call"},
    {EINVAL, "EINVAL", "invalid argument"},
    {EIO, "EIO", "i/o error"},
    {EISDIR, "EISDIR", "illegal operation on a directory"},
    {ELOOP, "ELOOP", "too many symbolic links encountered"},
    {EMLINK, "EMLINK", "too many links"},
    {ENAMETOOLONG, "ENAMETOOLONG", "name too long"},
    {ENODATA, "ENODATA", "no data available"},
    {ENODEV, "ENODEV", "no such device"},
    {ENOENT, "ENOENT", "no such file or directory"},
    {ENOMEM, "ENOMEM", "not enough memory"},
    {ENOSPC, "ENOSPC", "no space left on device"},
    {ENOSYS, "ENOSYS", "function not implemented"},
    {ENOTDIR, "ENOTDIR", "not a directory"},
    {ENOTSUP, "ENOTSUP", "operation not supported"}, /* == EOPNOTSUPP on Linux */
    {ENXIO, "ENXIO", "no such device or address"},
    {EOVERFLOW, "EOVERFLOW", "value too large for defined data type"},
    {EPERM, "EPERM", "operation not permitted"},
    {ERANGE, "ERANGE", "result too large"},
    {EROFS, "EROFS", "read-only file system"},
    {ESPIPE, "ESPIPE", "invalid seek"},
    {ETXTBSY, "ETXTBSY", "text file is busy"},
    {EXDEV, "EXDEV", "cross-device link not permitted"},
};

static void describe_errno(int code, const char **name, const char **text) {
  for (size_t i = 0; i < sizeof errno_table / sizeof errno_table[0]; i++) {
    if (errno_table[i].code == code) {
      *name = errno_table[i].name;
      *text = errno_table[i].text;
      return;
    }
  }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *glibc_name = strerrorname_np(code);
  const char *glibc_text = strerrordesc_np(code);
  *name = glibc_name != NULL ? glibc_name : "UNKNOWN";
  *text = glibc_text != NULL ? glibc_text : "unknown error";
#else
  *name = "UNKNOWN";
  *text = "unknown error";
#endif
}

/* Throws the pending Node-API failure as an Error unless a JS exception is already pending. */
static void throw_napi_failure(napi_env env) {
  const napi_extended_error_info *info = NULL;
  const char *message = "Node-API call failed";
  /* Must come first: every Node-API call overwrites the last error info. */
  if (napi_get_last_error_info(env, &info) == napi_ok && info != NULL && info->error_message != NULL) {
    message = info->error_message;
  }
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  napi_throw_error(env, NULL, message);
}

static bool set_string_property(napi_env env, napi_value object, const char *key, const char *value) {
  napi_value v;
  return napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v) == napi_ok &&
         napi_set_named_property(env, object, key, v) == napi_ok;
}

/*
 * A Node-style system error for errno `code`; `path` may be NULL (fd-based calls). NULL when it
 * could not be made (a Node-API failure is then pending or describable).
 */
static napi_value errno_error(napi_env env, int code, const char *syscall, const char *path) {
  const char *name;
  const char *text;
  describe_errno(code, &name, &text);

  char *message = NULL;
  int n = path != NULL ? asprintf(&message, "%s: %s, %s '%s'", name, text, syscall, path)
                       : asprintf(&message, "%s: %s, %s", name, text, syscall);
  if (n < 0) return NULL;

  napi_value code_v, message_v, err, errno_v;
  bool ok = napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code_v) == napi_ok &&
            napi_create_string_utf8(env, message, (size_t)n, &message_v) == napi_ok &&
            napi_create_error(env, code_v, message_v, &err) == napi_ok &&
            napi_create_int32(env, -code, &errno_v) == napi_ok &&
            napi_set_named_property(env, err, "errno", errno_v) == napi_ok &&
            set_string_property(env, err, "syscall", syscall) &&
            (path == NULL || set_string_property(env, err, "path", path));
  free(message);
  return ok ? err : NULL;
}

/* Throws errno_error(). */
static void throw_errno(napi_env env, int code, const char *syscall, const char *path) {
  napi_value err = errno_error(env, code, syscall, path);
  if (err != NULL) {
    napi_throw(env, err);
  } else {
    throw_napi_failure(env);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Arguments                                                                                   */

static bool get_args(napi_env env, napi_callback_info info, size_t expected, napi_value *argv) {
  size_t argc = expected;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    throw_napi_failure(env);
    return false;
  }
  if (argc < expected) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "missing arguments");
    return false;
  }
  return true;
}

static bool check_type(napi_env env, napi_value value, napi_valuetype want, const char *what, const char *type_name) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) {
    throw_napi_failure(env);
    return false;
  }
  if (type != want) {
    char message[128];
    snprintf(message, sizeof message, "The \"%s\" argument must be of type %s", what, type_name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  return true;
}

/* Copies a JS string into a new NUL-terminated buffer the caller frees. Rejects embedded NULs,
 * which would silently truncate the path or name the kernel sees. */
static bool get_string(napi_env env, napi_value value, const char *what, char **out) {
  *out = NULL;
  if (!check_type(env, value, napi_string, what, "string")) return false;
  size_t len;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) {
    throw_napi_failure(env);
    return false;
  }
  char *buf = malloc(len + 1);
  if (buf == NULL) {
    napi_throw_error(env, "ENOMEM", "not enough memory");
    return false;
  }
  if (napi_get_value_string_utf8(env, value, buf, len + 1, &len) != napi_ok) {
    free(buf);
    throw_napi_failure(env);
    return false;
  }
  if (strlen(buf) != len) {
    free(buf);
    char message[128];
    snprintf(message, sizeof message, "The \"%s\" argument must not contain null bytes", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", message);
    return false;
  }
  *out = buf;
  return true;
}

static bool get_fd(napi_env env, napi_value value, int *fd) {
  if (!check_type(env, value, napi_number, "fd", "number")) return false;
  double d;
  if (napi_get_value_double(env, value, &d) != napi_ok) {
    throw_napi_failure(env);
    return false;
  }
  if (!(d >= 0 && d <= INT32_MAX && d == (double)(int32_t)d)) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "The \"fd\" argument must be an integer >= 0 and <= 2147483647");
    return false;
  }
  *fd = (int)d;
  return true;
}

/* A non-negative integer number no larger than 2^53. */
static bool get_uint53(napi_env env, napi_value value, const char *what, uint64_t *out) {
  if (!check_type(env, value, napi_number, what, "number")) return false;
  double d;
  if (napi_get_value_double(env, value, &d) != napi_ok) {
    throw_napi_failure(env);
    return false;
  }
  if (!(d >= 0 && d <= MAX_SAFE_OFFSET && d == (double)(uint64_t)d)) {
    char message[128];
    snprintf(message, sizeof message, "The \"%s\" argument must be an integer >= 0 and <= 2^53", what);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
    return false;
  }
  *out = (uint64_t)d;
  return true;
}

/* Nanoseconds since the epoch (a bigint fitting int64) to a timespec with 0 <= tv_nsec < 1e9. */
static bool get_timespec(napi_env env, napi_value value, const char *what, struct timespec *ts) {
  if (!check_type(env, value, napi_bigint, what, "bigint")) return false;
  int64_t ns;
  bool lossless = false;
  if (napi_get_value_bigint_int64(env, value, &ns, &lossless) != napi_ok) {
    throw_napi_failure(env);
    return false;
  }
  if (!lossless) {
    char message[128];
    snprintf(message, sizeof message, "The \"%s\" argument must fit in a signed 64-bit integer", what);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
    return false;
  }
  int64_t sec = ns / 1000000000;
  int64_t rem = ns % 1000000000;
  if (rem < 0) { /* C truncates toward zero; times before 1970 need floor division */
    rem += 1000000000;
    sec -= 1;
  }
  ts->tv_sec = (time_t)sec;
  ts->tv_nsec = (long)rem;
  return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Extended attributes                                                                         */

/* listXattrs(path: string): string[] */
static napi_value list_xattrs(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  char *path;
  if (!get_string(env, argv[0], "path", &path)) return NULL;

  napi_value result = NULL;
  char *buf = NULL;
  ssize_t len = 0;
  /* The list can grow between the size query and the read (ERANGE): ask again. */
  for (int attempt = 0;; attempt++) {
    len = llistxattr(path, NULL, 0);
    if (len < 0) {
      throw_errno(env, errno, "llistxattr", path);
      goto done;
    }
    if (len == 0) break;
    char *grown = realloc(buf, (size_t)len);
    if (grown == NULL) {
      throw_errno(env, ENOMEM, "llistxattr", path);
      goto done;
    }
    buf = grown;
    ssize_t got = llistxattr(path, buf, (size_t)len);
    if (got >= 0) {
      len = got;
      break;
    }
    if (errno != ERANGE || attempt >= MAX_ERANGE_RETRIES) {
      throw_errno(env, errno, "llistxattr", path);
      goto done;
    }
  }

  napi_value array;
  if (napi_create_array(env, &array) != napi_ok) {
    throw_napi_failure(env);
    goto done;
  }
  uint32_t index = 0;
  const char *p = buf;
  const char *end = len > 0 ? buf + len : buf;
  while (p != NULL && p < end) { /* NUL-separated names */
    size_t name_len = strnlen(p, (size_t)(end - p));
    if (name_len > 0) {
      napi_value name;
      if (napi_create_string_utf8(env, p, name_len, &name) != napi_ok ||
          napi_set_element(env, array, index++, name) != napi_ok) {
        throw_napi_failure(env);
        goto done;
      }
    }
    p += name_len + 1;
  }
  result = array;

done:
  free(buf);
  free(path);
  return result;
}

/* getXattr(path: string, name: string): Buffer */
static napi_value get_xattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  char *path = NULL;
  char *name = NULL;
  if (!get_string(env, argv[0], "path", &path) || !get_string(env, argv[1], "name", &name)) {
    free(path);
    return NULL;
  }

  napi_value result = NULL;
  char *buf = NULL;
  ssize_t len = 0;
  for (int attempt = 0;; attempt++) {
    len = lgetxattr(path, name, NULL, 0);
    if (len < 0) {
      throw_errno(env, errno, "lgetxattr", path);
      goto done;
    }
    if (len == 0) break;
    char *grown = realloc(buf, (size_t)len);
    if (grown == NULL) {
      throw_errno(env, ENOMEM, "lgetxattr", path);
      goto done;
    }
    buf = grown;
    ssize_t got = lgetxattr(path, name, buf, (size_t)len);
    if (got >= 0) {
      len = got;
      break;
    }
    if (errno != ERANGE || attempt >= MAX_ERANGE_RETRIES) {
      throw_errno(env, errno, "lgetxattr", path);
      goto done;
    }
  }

  napi_value buffer;
  void *data;
  if (napi_create_buffer(env, (size_t)len, &data, &buffer) != napi_ok) {
    throw_napi_failure(env);
    goto done;
  }
  if (len > 0) memcpy(data, buf, (size_t)len);
  result = buffer;

done:
  free(buf);
  free(name);
  free(path);
  return result;
}

/* setXattr(path: string, name: string, value: Uint8Array): void */
static napi_value set_xattr(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;

  bool is_typed = false;
  napi_typedarray_type type = napi_int8_array;
  size_t length = 0;
  void *data = NULL;
  if (napi_is_typedarray(env, argv[2], &is_typed) != napi_ok) {
    throw_napi_failure(env);
    return NULL;
  }
  if (is_typed && napi_get_typedarray_info(env, argv[2], &type, &length, &data, NULL, NULL) != napi_ok) {
    throw_napi_failure(env);
    return NULL;
  }
  if (!is_typed || type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "The \"value\" argument must be a Buffer or Uint8Array");
    return NULL;
  }

  char *path = NULL;
  char *name = NULL;
  if (!get_string(env, argv[0], "path", &path) || !get_string(env, argv[1], "name", &name)) {
    free(path);
    return NULL;
  }
  if (lsetxattr(path, name, length > 0 ? data : "", length, 0) != 0) {
    throw_errno(env, errno, "lsetxattr", path);
  }
  free(name);
  free(path);
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Sparse files                                                                                */

/* lseek(fd, offset, whence); -1 when the kernel says there is nothing at or after offset. */
static napi_value seek(napi_env env, napi_callback_info info, int whence) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int fd;
  uint64_t offset;
  if (!get_fd(env, argv[0], &fd) || !get_uint53(env, argv[1], "offset", &offset)) return NULL;

  off_t at = lseek(fd, (off_t)offset, whence);
  if (at < 0) {
    if (errno != ENXIO) {
      throw_errno(env, errno, "lseek", NULL);
      return NULL;
    }
    at = -1;
  }
  napi_value result;
  if (napi_create_double(env, (double)at, &result) != napi_ok) {
    throw_napi_failure(env);
    return NULL;
  }
  return result;
}

static napi_value seek_data(napi_env env, napi_callback_info info) {
  return seek(env, info, SEEK_DATA);
}

static napi_value seek_hole(napi_env env, napi_callback_info info) {
  return seek(env, info, SEEK_HOLE);
}

/* The data of a typed array argument; `want` < 0 accepts any element type. Throws
 * ERR_INVALID_ARG_TYPE naming the argument and `type_name` otherwise. */
static bool get_typed_array(napi_env env, napi_value value, int want, const char *what, const char *type_name, void **data, size_t *length) {
  bool is_typed = false;
  napi_typedarray_type type;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, value, &type, length, data, NULL, NULL) != napi_ok || (want >= 0 && (int)type != want)) {
    char message[128];
    snprintf(message, sizeof message, "The \"%s\" argument must be a %s", what, type_name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Direct I/O                                                                                  */

/* addressMod(view: Uint8Array, align: number): the address of view's first byte modulo align
 * (a power of two). O_DIRECT transfers need aligned memory, which JavaScript cannot see. */
static napi_value address_mod(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  size_t length;
  void *data = NULL;
  if (!get_typed_array(env, argv[0], -1, "view", "Uint8Array", &data, &length)) return NULL;
  uint64_t align;
  if (!get_uint53(env, argv[1], "align", &align)) return NULL;
  if (align == 0 || (align & (align - 1)) != 0) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "The \"align\" argument must be a power of two");
    return NULL;
  }
  napi_value result;
  if (napi_create_double(env, (double)((uintptr_t)data & (uintptr_t)(align - 1)), &result) != napi_ok) {
    throw_napi_failure(env);
    return NULL;
  }
  return result;
}

/* ------------------------------------------------------------------------------------------ */
/* Special files and times                                                                     */

/* mknod(path: string, mode: number, dev: number | bigint): void */
static napi_value make_node(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;

  uint64_t mode;
  if (!get_uint53(env, argv[1], "mode", &mode)) return NULL;
  if (mode > UINT32_MAX) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "The \"mode\" argument must be a 32-bit unsigned integer");
    return NULL;
  }

  /* dev as fs.lstat() reports rdev: glibc's dev_t encoding; stat with bigint: true gives a bigint. */
  uint64_t dev;
  napi_valuetype dev_type;
  if (napi_typeof(env, argv[2], &dev_type) != napi_ok) {
    throw_napi_failure(env);
    return NULL;
  }
  if (dev_type == napi_bigint) {
    bool lossless = false;
    if (napi_get_value_bigint_uint64(env, argv[2], &dev, &lossless) != napi_ok) {
      throw_napi_failure(env);
      return NULL;
    }
    if (!lossless) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "The \"dev\" argument must fit in an unsigned 64-bit integer");
      return NULL;
    }
  } else if (!get_uint53(env, argv[2], "dev", &dev)) {
    return NULL;
  }

  char *path;
  if (!get_string(env, argv[0], "path", &path)) return NULL;
  if (mknod(path, (mode_t)mode, (dev_t)dev) != 0) {
    throw_errno(env, errno, "mknod", path);
  }
  free(path);
  return NULL;
}

/* utimensNoFollow(path: string, atimeNs: bigint, mtimeNs: bigint): void */
static napi_value utimens_no_follow(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  struct timespec ts[2];
  if (!get_timespec(env, argv[1], "atimeNs", &ts[0]) || !get_timespec(env, argv[2], "mtimeNs", &ts[1])) return NULL;
  char *path;
  if (!get_string(env, argv[0], "path", &path)) return NULL;
  if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) != 0) {
    throw_errno(env, errno, "utimensat", path);
  }
  free(path);
  return NULL;
}

/* futimens(fd: number, atimeNs: bigint, mtimeNs: bigint): void */
static napi_value fd_utimens(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int fd;
  struct timespec ts[2];
  if (!get_fd(env, argv[0], &fd) || !get_timespec(env, argv[1], "atimeNs", &ts[0]) ||
      !get_timespec(env, argv[2], "mtimeNs", &ts[1])) {
    return NULL;
  }
  if (futimens(fd, ts) != 0) {
    throw_errno(env, errno, "futimens", NULL);
  }
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------------------------ */
/* Directory listing with lstat                                                                */

static int64_t ns_of(struct timespec ts) {
  return (int64_t)ts.tv_sec * 1000000000LL + (int64_t)ts.tv_nsec;
}

#define STAT_FIELDS 12 /* mode uid gid size blocks ino dev nlink rdev mtimeNs ctimeNs xattrBytes */

/* A growable array of int64 fields, STAT_FIELDS per entry. */
typedef struct {
  int64_t *v;
  size_t len, cap;
} fields_t;

static bool fields_push(fields_t *f, int64_t x) {
  if (f->len == f->cap) {
    size_t cap = f->cap ? f->cap * 2 : 64 * STAT_FIELDS;
    int64_t *v = realloc(f->v, cap * sizeof *v);
    if (v == NULL) return false;
    f->v = v;
    f->cap = cap;
  }
  f->v[f->len++] = x;
  return true;
}

/* One directory's listing, gathered without Node-API so that it can run on a libuv pool thread. */
typedef struct {
  char *dir;
  char *names; /* NUL-terminated names, one after another */
  size_t names_len, names_cap;
  uint32_t count;
  fields_t f;
  int err; /* errno of the failed call, 0 when the listing is whole */
  const char *syscall;
  napi_async_work work;
  napi_deferred deferred;
} dir_list_t;

static bool names_push(dir_list_t *l, const char *name) {
  size_t n = strlen(name) + 1;
  if (l->names_len + n > l->names_cap) {
    size_t cap = l->names_cap ? l->names_cap * 2 : 4096;
    while (cap < l->names_len + n) cap *= 2;
    char *v = realloc(l->names, cap);
    if (v == NULL) return false;
    l->names = v;
    l->names_cap = cap;
  }
  memcpy(l->names + l->names_len, name, n);
  l->names_len += n;
  l->count++;
  return true;
}

static void dir_list_free(dir_list_t *l) {
  free(l->dir);
  free(l->names);
  free(l->f.v);
  free(l);
}

/*
 * Every entry of l->dir (not . and ..) and, per entry, STAT_FIELDS int64s from lstat plus the
 * size of its xattr name list; mode 0 and the errno in the uid slot when lstat failed.
 */
static void dir_list_collect(dir_list_t *l) {
  DIR *d = opendir(l->dir);
  if (d == NULL) {
    l->err = errno;
    l->syscall = "opendir";
    return;
  }
  int dfd = dirfd(d);
  size_t dirlen = strlen(l->dir);
  char *path = NULL;
  fields_t *f = &l->f;
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (de == NULL) {
      if (errno != 0) {
        l->err = errno;
        l->syscall = "readdir";
      }
      break;
    }
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (!names_push(l, de->d_name)) goto nomem;
    struct stat st;
    bool ok;
    if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      int e = errno;
      ok = fields_push(f, 0) && fields_push(f, e);
      for (int i = 2; ok && i < STAT_FIELDS; i++) ok = fields_push(f, 0);
    } else {
      /* Most files have no xattrs: asking the size here spares a call per file from JS. */
      size_t plen = dirlen + 1 + strlen(de->d_name) + 1;
      char *p = realloc(path, plen);
      if (p == NULL) goto nomem;
      path = p;
      snprintf(path, plen, "%s/%s", l->dir, de->d_name);
      ssize_t xs = llistxattr(path, NULL, 0);
      ok = fields_push(f, (int64_t)st.st_mode) && fields_push(f, (int64_t)st.st_uid) && fields_push(f, (int64_t)st.st_gid) &&
           fields_push(f, (int64_t)st.st_size) && fields_push(f, (int64_t)st.st_blocks) && fields_push(f, (int64_t)st.st_ino) &&
           fields_push(f, (int64_t)st.st_dev) && fields_push(f, (int64_t)st.st_nlink) && fields_push(f, (int64_t)st.st_rdev) &&
           fields_push(f, ns_of(st.st_mtim)) && fields_push(f, ns_of(st.st_ctim)) && fields_push(f, xs < 0 ? 0 : (int64_t)xs);
    }
    if (!ok) goto nomem;
  }
  closedir(d);
  free(path);
  return;
nomem:
  l->err = ENOMEM;
  l->syscall = "malloc";
  closedir(d);
  free(path);
}

/* { names: string[], stats: BigInt64Array } of a whole listing; NULL on a Node-API failure. */
static napi_value dir_list_value(napi_env env, const dir_list_t *l) {
  napi_value names, result, buffer, typed;
  if (napi_create_array_with_length(env, l->count, &names) != napi_ok) return NULL;
  const char *name = l->names;
  for (uint32_t i = 0; i < l->count; i++) {
    napi_value v;
    size_t n = strlen(name);
    if (napi_create_string_utf8(env, name, n, &v) != napi_ok || napi_set_element(env, names, i, v) != napi_ok) return NULL;
    name += n + 1;
  }
  void *data = NULL;
  if (napi_create_arraybuffer(env, l->f.len * sizeof(int64_t), &data, &buffer) != napi_ok) return NULL;
  if (l->f.len > 0) memcpy(data, l->f.v, l->f.len * sizeof(int64_t));
  if (napi_create_typedarray(env, napi_bigint64_array, l->f.len, buffer, 0, &typed) != napi_ok || napi_create_object(env, &result) != napi_ok ||
      napi_set_named_property(env, result, "names", names) != napi_ok || napi_set_named_property(env, result, "stats", typed) != napi_ok) {
    return NULL;
  }
  return result;
}

/* The listing of argv[0] to be, or NULL with an exception pending. */
static dir_list_t *dir_list_new(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  dir_list_t *l = calloc(1, sizeof *l);
  if (l == NULL) {
    napi_throw_error(env, "ENOMEM", "not enough memory");
    return NULL;
  }
  if (!get_string(env, argv[0], "path", &l->dir)) {
    free(l);
    return NULL;
  }
  return l;
}

/*
 * listDirStats(dir) -> { names: string[], stats: BigInt64Array }: see dir_list_collect. One call
 * and one typed array per directory: creating an object with bigint properties per entry cost
 * more than the syscalls.
 */
static napi_value list_dir_stats(napi_env env, napi_callback_info info) {
  dir_list_t *l = dir_list_new(env, info);
  if (l == NULL) return NULL;
  dir_list_collect(l);
  napi_value result = NULL;
  if (l->err != 0) {
    throw_errno(env, l->err, l->syscall, l->dir);
  } else if ((result = dir_list_value(env, l)) == NULL) {
    throw_napi_failure(env);
  }
  dir_list_free(l);
  return result;
}

static void dir_list_execute(napi_env env, void *data) {
  (void)env;
  dir_list_collect((dir_list_t *)data);
}

static void dir_list_complete(napi_env env, napi_status status, void *data) {
  dir_list_t *l = (dir_list_t *)data;
  napi_value value = NULL;
  bool ok = false;
  if (status == napi_ok && l->err == 0) {
    value = dir_list_value(env, l);
    ok = value != NULL;
  } else if (status == napi_ok) {
    value = errno_error(env, l->err, l->syscall, l->dir);
  }
  if (value == NULL) {
    napi_value message;
    napi_create_string_utf8(env, "listDirStatsAsync: Node-API call failed", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &value);
  }
  if (ok) {
    napi_resolve_deferred(env, l->deferred, value);
  } else {
    napi_reject_deferred(env, l->deferred, value);
  }
  napi_delete_async_work(env, l->work);
  dir_list_free(l);
}

/* listDirStatsAsync(dir) -> Promise of listDirStats(dir)'s result, the system calls on a libuv pool thread. */
static napi_value list_dir_stats_async(napi_env env, napi_callback_info info) {
  dir_list_t *l = dir_list_new(env, info);
  if (l == NULL) return NULL;
  napi_value promise, resource;
  if (napi_create_promise(env, &l->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "holdfast.listDirStats", NAPI_AUTO_LENGTH, &resource) != napi_ok) {
    dir_list_free(l);
    throw_napi_failure(env);
    return NULL;
  }
  if (napi_create_async_work(env, NULL, resource, dir_list_execute, dir_list_complete, l, &l->work) != napi_ok) {
    /* The promise stays pending; nobody else holds it. */
    dir_list_free(l);
    throw_napi_failure(env);
    return NULL;
  }
  if (napi_queue_async_work(env, l->work) != napi_ok) {
    napi_delete_async_work(env, l->work);
    dir_list_free(l);
    throw_napi_failure(env);
    return NULL;
  }
  return promise;
}

/* ------------------------------------------------------------------------------------------ */
/* inotify (the dir tracker's change journal)                                                  */

/* inotifyInit(): number — a non-blocking, close-on-exec inotify descriptor (close with fs.closeSync). */
static napi_value js_inotify_init(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    throw_errno(env, errno, "inotify_init1", NULL);
    return NULL;
  }
  napi_value result;
  if (napi_create_int32(env, fd, &result) != napi_ok) {
    close(fd);
    throw_napi_failure(env);
    return NULL;
  }
  return result;
}

/* inotifyAddWatch(fd, path, mask): number — the watch descriptor (the same one again for a
 * directory already watched). ENOSPC means the per-user watch limit is reached. */
static napi_value js_inotify_add(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int fd;
  char *path = NULL;
  uint64_t mask = 0;
  if (!get_fd(env, argv[0], &fd) || !get_string(env, argv[1], "path", &path)) return NULL;
  if (!get_uint53(env, argv[2], "mask", &mask) || mask > UINT32_MAX) {
    if (mask > UINT32_MAX) napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "The \"mask\" argument must fit 32 bits");
    free(path);
    return NULL;
  }
  int wd = inotify_add_watch(fd, path, (uint32_t)mask);
  if (wd < 0) {
    throw_errno(env, errno, "inotify_add_watch", path);
    free(path);
    return NULL;
  }
  free(path);
  napi_value result;
  if (napi_create_int32(env, wd, &result) != napi_ok) {
    throw_napi_failure(env);
    return NULL;
  }
  return result;
}

/* inotifyRmWatch(fd, wd): void — EINVAL (the watch is already gone) is not an error. */
static napi_value js_inotify_rm(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int fd;
  int32_t wd;
  if (!get_fd(env, argv[0], &fd)) return NULL;
  if (!check_type(env, argv[1], napi_number, "wd", "number")) return NULL;
  if (napi_get_value_int32(env, argv[1], &wd) != napi_ok) {
    throw_napi_failure(env);
    return NULL;
  }
  if (inotify_rm_watch(fd, wd) < 0 && errno != EINVAL) {
    throw_errno(env, errno, "inotify_rm_watch", NULL);
    return NULL;
  }
  return NULL;
}

/* inotifyRead(fd, buffer): number — bytes of whole `struct inotify_event`s read into buffer, 0
 * when none are queued (EAGAIN). The buffer must hold at least one event with a NAME_MAX name. */
static napi_value js_inotify_read(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int fd;
  if (!get_fd(env, argv[0], &fd)) return NULL;
  bool is_buffer = false;
  if (napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "The \"buffer\" argument must be a Buffer");
    return NULL;
  }
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) {
    throw_napi_failure(env);
    return NULL;
  }
  if (len < sizeof(struct inotify_event) + NAME_MAX + 1) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "The \"buffer\" argument is too small for an inotify event");
    return NULL;
  }
  ssize_t n;
  do {
    n = read(fd, data, len);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN) {
      throw_errno(env, errno, "read", NULL);
      return NULL;
    }
    n = 0;
  }
  napi_value result;
  if (napi_create_double(env, (double)n, &result) != napi_ok) {
    throw_napi_failure(env);
    return NULL;
  }
  return result;
}

/* ------------------------------------------------------------------------------------------ */
/* Content-defined chunking                                                                    */

/* The gear table of src/core/chunker.ts: xorshift32 from the seed 0x9e3779b9. Cut points are part
 * of the storage format (dedup against existing pools needs the same cuts), so this must stay
 * bit-identical to the JavaScript; src/workers/cdc.test.ts compares the two. */
static uint32_t gear[256];
static pthread_once_t gear_once = PTHREAD_ONCE_INIT;

static void gear_init(void) {
  uint32_t x = 0x9e3779b9u;
  for (int i = 0; i < 256; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    gear[i] = x;
  }
}

/* cdcNext of src/core/chunker.ts over p[0, avail): the length of the next chunk, or 0 when the
 * input is not final and holds fewer than `max` bytes. Same 32-bit wrapping hash, same masks
 * (computed by the caller), same min / normal / max rules. */
static uint64_t cdc_next(const uint8_t *p, uint64_t avail, uint64_t min, uint64_t avg, uint64_t max,
                         uint32_t small, uint32_t large, bool final) {
  if (avail == 0) return 0;
  if (avail < max && !final) return 0;
  if (avail <= min) return avail;
  uint64_t n = avail < max ? avail : max;
  uint64_t normal = avg < n ? avg : n;
  uint32_t h = 0;
  uint64_t i = min;
  for (; i < normal; i++) {
    h = (h << 1) + gear[p[i]];
    if ((h & small) == 0) return i + 1;
  }
  for (; i < n; i++) {
    h = (h << 1) + gear[p[i]];
    if ((h & large) == 0) return i + 1;
  }
  return n;
}

static bool get_int32(napi_env env, napi_value value, const char *what, int32_t *out) {
  if (!check_type(env, value, napi_number, what, "number")) return false;
  if (napi_get_value_int32(env, value, out) != napi_ok) {
    throw_napi_failure(env);
    return false;
  }
  return true;
}

/* cdcSplit(view: Uint8Array, min, avg, max, maskSmall, maskLarge, final: boolean,
 *          lengths: Uint32Array): number
 * Cuts view from its start as repeated cdcNext calls would, writing the chunk lengths into
 * `lengths`; returns how many it wrote. It stops when no complete chunk is left or `lengths` is
 * full (then the caller continues after the chunks it got). One call per buffer, not per chunk. */
static napi_value cdc_split(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!get_args(env, info, 8, argv)) return NULL;
  size_t length, out_length;
  void *data = NULL, *out_data = NULL;
  if (!get_typed_array(env, argv[0], napi_uint8_array, "view", "Uint8Array", &data, &length) ||
      !get_typed_array(env, argv[7], napi_uint32_array, "lengths", "Uint32Array", &out_data, &out_length))
    return NULL;
  uint64_t min, avg, max;
  int32_t small, large;
  bool final;
  if (!get_uint53(env, argv[1], "min", &min) || !get_uint53(env, argv[2], "avg", &avg) || !get_uint53(env, argv[3], "max", &max) ||
      !get_int32(env, argv[4], "maskSmall", &small) || !get_int32(env, argv[5], "maskLarge", &large) ||
      !check_type(env, argv[6], napi_boolean, "final", "boolean")) {
    return NULL;
  }
  if (napi_get_value_bool(env, argv[6], &final) != napi_ok) {
    throw_napi_failure(env);
    return NULL;
  }
  if (min > UINT32_MAX || max > UINT32_MAX) { /* so every length fits the Uint32Array */
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "The \"min\" and \"max\" arguments must fit 32 bits");
    return NULL;
  }
  pthread_once(&gear_once, gear_init);
  const uint8_t *p = data;
  uint32_t *out = out_data;
  uint64_t pos = 0;
  size_t count = 0;
  while (count < out_length) {
    uint64_t len = cdc_next(p + pos, length - pos, min, avg, max, (uint32_t)small, (uint32_t)large, final);
    if (len == 0) break;
    out[count++] = (uint32_t)len;
    pos += len;
  }
  napi_value result;
  if (napi_create_double(env, (double)count, &result) != napi_ok) {
    throw_napi_failure(env);
    return NULL;
  }
  return result;
}

/* ------------------------------------------------------------------------------------------ */
/* Spawning without fork                                                                       */

/*
 * Node (libuv) starts a child with fork(): every writable page of this process is then marked
 * copy-on-write, and the next write to each one faults, even after the child has exec'd. On
 * these VMs a fault costs about as much as touching fresh memory (3-5 ms per MiB), so an agent
 * that starts qemu-storage-daemon or btrfs during a sync paid that again for every buffer it
 * reused. posix_spawn (glibc: clone with CLONE_VM | CLONE_VFORK) shares the address space until
 * the exec and copies no page tables. A thread per child waits for it and hands the exit status
 * to JavaScript through a thread-safe function (libuv reaps only the children it started).
 */
typedef struct {
  pid_t pid;
  napi_threadsafe_function tsfn;
  int status;
  int error;
} child_wait_t;

static void child_exit_js(napi_env env, napi_value cb, void *context, void *data) {
  child_wait_t *w = data;
  if (env != NULL && cb != NULL) {
    int code = -1, sig = 0;
    if (w->error == 0 && WIFEXITED(w->status)) code = WEXITSTATUS(w->status);
    if (w->error == 0 && WIFSIGNALED(w->status)) sig = WTERMSIG(w->status);
    napi_value args[2], undefined;
    if (napi_create_int32(env, code, &args[0]) == napi_ok && napi_create_int32(env, sig, &args[1]) == napi_ok &&
        napi_get_undefined(env, &undefined) == napi_ok) {
      napi_call_function(env, undefined, cb, 2, args, NULL);
    }
  }
  free(w);
}

static void *child_wait_thread(void *arg) {
  child_wait_t *w = arg;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(w->pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  w->status = status;
  w->error = r < 0 ? errno : 0;
  napi_threadsafe_function tsfn = w->tsfn;
  if (napi_call_threadsafe_function(tsfn, w, napi_tsfn_blocking) != napi_ok) free(w);
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
  return NULL;
}

static void free_strings(char **list) {
  if (list == NULL) return;
  for (char **p = list; *p != NULL; p++) free(*p);
  free(list);
}

/* A JS array of strings as a NULL-terminated list the caller frees with free_strings. */
static bool get_string_list(napi_env env, napi_value value, const char *what, char ***out) {
  *out = NULL;
  bool is_array = false;
  if (napi_is_array(env, value, &is_array) != napi_ok || !is_array) {
    char message[128];
    snprintf(message, sizeof message, "The \"%s\" argument must be an array of strings", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  uint32_t n = 0;
  if (napi_get_array_length(env, value, &n) != napi_ok) {
    throw_napi_failure(env);
    return false;
  }
  char **list = calloc((size_t)n + 1, sizeof *list);
  if (list == NULL) {
    napi_throw_error(env, "ENOMEM", "not enough memory");
    return false;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    if (napi_get_element(env, value, i, &item) != napi_ok) {
      throw_napi_failure(env);
      free_strings(list);
      return false;
    }
    if (!get_string(env, item, what, &list[i])) {
      free_strings(list);
      return false;
    }
  }
  *out = list;
  return true;
}

static bool set_int_property(napi_env env, napi_value object, const char *key, int value) {
  napi_value v;
  return napi_create_int32(env, value, &v) == napi_ok && napi_set_named_property(env, object, key, v) == napi_ok;
}

/*
 * spawnProcess(file, argv, env | null, pipes, detached, onExit) → {pid, stdin, stdout, stderr}
 * `pipes` is a 3-bit mask: bit i set gives standard stream i a pipe (its parent end, close-on-exec,
 * is returned; -1 otherwise), else /dev/null. `file` is looked up in PATH. The child starts with
 * default signal dispositions and an empty signal mask (as libuv does), in a new session when
 * `detached`. onExit(code, signal) is called once: code -1 when killed by `signal`.
 */
static napi_value spawn_process(napi_env env, napi_callback_info info) {
  napi_value argv_js[6];
  if (!get_args(env, info, 6, argv_js)) return NULL;
  char *file = NULL;
  char **argv = NULL, **envp = NULL;
  napi_valuetype env_type;
  int32_t pipes_mask = 0;
  bool detached = false;
  if (!get_string(env, argv_js[0], "file", &file)) return NULL;
  if (!get_string_list(env, argv_js[1], "argv", &argv)) goto fail_args;
  if (napi_typeof(env, argv_js[2], &env_type) != napi_ok) goto fail_napi;
  if (env_type != napi_null && env_type != napi_undefined && !get_string_list(env, argv_js[2], "env", &envp)) goto fail_args;
  if (!check_type(env, argv_js[3], napi_number, "pipes", "number") || napi_get_value_int32(env, argv_js[3], &pipes_mask) != napi_ok) goto fail_args;
  if (!check_type(env, argv_js[4], napi_boolean, "detached", "boolean") || napi_get_value_bool(env, argv_js[4], &detached) != napi_ok) goto fail_args;
  if (!check_type(env, argv_js[5], napi_function, "onExit", "function")) goto fail_args;

  int fds[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  int err = 0;
  const char *syscall = "pipe2";
  for (int i = 0; i < 3 && err == 0; i++) {
    if (pipes_mask & (1 << i)) {
      if (pipe2(fds[i], O_CLOEXEC) != 0) {
        err = errno;
        break;
      }
      /* stdin: the child reads fds[0][0]; stdout, stderr: it writes fds[i][1]. dup2 clears close-on-exec. */
      err = posix_spawn_file_actions_adddup2(&actions, i == 0 ? fds[i][0] : fds[i][1], i);
    } else {
      err = posix_spawn_file_actions_addopen(&actions, i, "/dev/null", i == 0 ? O_RDONLY : O_RDWR, 0);
    }
  }
  pid_t pid = -1;
  if (err == 0) {
    sigset_t defaults, empty;
    sigemptyset(&defaults);
    for (int sig = 1; sig < 32; sig++) {
      if (sig != SIGKILL && sig != SIGSTOP) sigaddset(&defaults, sig);
    }
    sigemptyset(&empty);
    short flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | (detached ? POSIX_SPAWN_SETSID : 0);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setflags(&attr, flags);
    extern char **environ;
    syscall = "posix_spawn";
    err = posix_spawnp(&pid, file, &actions, &attr, argv, envp != NULL ? envp : environ);
  }
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  /* The child's ends are the child's now (or nobody's). */
  for (int i = 0; i < 3; i++) {
    int child_end = i == 0 ? fds[i][0] : fds[i][1];
    if (child_end >= 0) close(child_end);
  }
  if (err != 0) {
    for (int i = 0; i < 3; i++) {
      int parent_end = i == 0 ? fds[i][1] : fds[i][0];
      if (parent_end >= 0) close(parent_end);
    }
    throw_errno(env, err, syscall, file);
    goto fail_args;
  }

  child_wait_t *w = calloc(1, sizeof *w);
  napi_value resource, result;
  bool ok = w != NULL && napi_create_string_utf8(env, "holdfast:child", NAPI_AUTO_LENGTH, &resource) == napi_ok &&
            napi_create_threadsafe_function(env, argv_js[5], NULL, resource, 0, 1, NULL, NULL, NULL, child_exit_js, &w->tsfn) == napi_ok;
  if (ok) {
    w->pid = pid;
    pthread_attr_t thread_attr;
    pthread_t thread;
    pthread_attr_init(&thread_attr);
    pthread_attr_setdetachstate(&thread_attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&thread_attr, 64 * 1024);
    ok = pthread_create(&thread, &thread_attr, child_wait_thread, w) == 0;
    pthread_attr_destroy(&thread_attr);
    if (!ok) napi_release_threadsafe_function(w->tsfn, napi_tsfn_release);
  }
  if (!ok) {
    /* Nobody would learn of its exit: do not leave it running. */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    free(w);
    for (int i = 0; i < 3; i++) {
      int parent_end = i == 0 ? fds[i][1] : fds[i][0];
      if (parent_end >= 0) close(parent_end);
    }
    throw_napi_failure(env);
    goto fail_args;
  }
  if (napi_create_object(env, &result) != napi_ok || !set_int_property(env, result, "pid", pid) ||
      !set_int_property(env, result, "stdin", fds[0][1]) || !set_int_property(env, result, "stdout", fds[1][0]) ||
      !set_int_property(env, result, "stderr", fds[2][0])) {
    throw_napi_failure(env);
    result = NULL;
  }
  free(file);
  free_strings(argv);
  free_strings(envp);
  return result;

fail_napi:
  throw_napi_failure(env);
fail_args:
  free(file);
  free_strings(argv);
  free_strings(envp);
  return NULL;
}

/*
 * Large blocks (read segments, encoded batches, packs, upload bodies: 1-8 MiB each, many per
 * second) are mapped and unmapped by malloc, at a fixed threshold. glibc's default threshold
 * rises after the first such free, and from then on they are carved from the heap and the
 * threads' arenas, which keep the freed space: a 2 GiB image backup peaked at 350 MB RSS.
 */
static pthread_once_t malloc_once = PTHREAD_ONCE_INIT;
static void malloc_init(void) {
  mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
}

NAPI_MODULE_INIT() {
  pthread_once(&malloc_once, malloc_init);
  napi_property_descriptor properties[] = {
      {"listXattrs", NULL, list_xattrs, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getXattr", NULL, get_xattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setXattr", NULL, set_xattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"seekData", NULL, seek_data, NULL, NULL, NULL, napi_enumerable, NULL},
      {"seekHole", NULL, seek_hole, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mknod", NULL, make_node, NULL, NULL, NULL, napi_enumerable, NULL},
      {"utimensNoFollow", NULL, utimens_no_follow, NULL, NULL, NULL, napi_enumerable, NULL},
      {"futimens", NULL, fd_utimens, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listDirStats", NULL, list_dir_stats, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listDirStatsAsync", NULL, list_dir_stats_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"inotifyInit", NULL, js_inotify_init, NULL, NULL, NULL, napi_enumerable, NULL},
      {"inotifyAddWatch", NULL, js_inotify_add, NULL, NULL, NULL, napi_enumerable, NULL},
      {"inotifyRmWatch", NULL, js_inotify_rm, NULL, NULL, NULL, napi_enumerable, NULL},
      {"inotifyRead", NULL, js_inotify_read, NULL, NULL, NULL, napi_enumerable, NULL},
      {"addressMod", NULL, address_mod, NULL, NULL, NULL, napi_enumerable, NULL},
      {"cdcSplit", NULL, cdc_split, NULL, NULL, NULL, napi_enumerable, NULL},
      {"spawnProcess", NULL, spawn_process, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties) != napi_ok) {
    throw_napi_failure(env);
    return NULL;
  }
  return exports;
}
