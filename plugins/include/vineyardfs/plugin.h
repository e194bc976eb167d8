/* vineyardfs/plugin.h: the plugin ABI of vineyardfs, version 1.
 *
 * This header is all a plugin author needs. A plugin is a shared object that
 * vineyardfs loads from its plugins= directory (or that a user copies into
 * /vineyard/resolvers/). It defines two symbols:
 *
 *     VY_PLUGIN_ABI;                                   // the ABI it was built for
 *     int vy_plugin_register(const vy_host* host, vy_registry* reg);
 *
 * The daemon checks vy_plugin_abi_version before calling anything, then calls
 * vy_plugin_register once; the plugin registers its resolvers and builders there
 * through host->register_resolver / host->register_builder and returns 0. A
 * nonzero return, or a registration that conflicts with a loaded plugin, refuses
 * the whole plugin; the reason shows in resolvers/<name>.error.
 *
 * Resolvers turn an object into a view file, objects/<id>/views/<view_name>. They
 * are chosen by typename prefix (Vineyard's rule: "vineyard::Tensor" matches
 * "vineyard::Tensor<double>"); when two resolvers give the same view name for an
 * object, the longer prefix wins. A resolver describes its view as a list of
 * segments, each either bytes it generates (host->add_bytes, copied by the host)
 * or a range of a blob (host->add_blob_range); the daemon stitches them when the
 * view is read, so a view of a large tensor copies nothing.
 *
 * Builders turn a file written into /vineyard/new/ into a typed object. They are
 * chosen by file-name suffix and/or leading magic bytes. A builder reads the file
 * through upload->data, creates blobs and metadata objects through the host, and
 * returns the id of the object the file becomes.
 *
 * Calls and lifetimes:
 *  - resolve and build functions may be called from several threads at once;
 *  - everything the host hands out (vy_object strings, blob mappings, upload->data)
 *    stays valid until the callback returns, and not after;
 *  - host functions taking a vy_call* may only be called during that callback;
 *  - host functions return 0 (or a size) on success and a negative errno on failure;
 *  - a plugin may be unloaded (rm resolvers/<name>.so) at any time no callback of it
 *    is running; views already open keep working, as the host owns their bytes.
 *
 * Build a plugin with one command, e.g.:
 *     cc -shared -fPIC -O2 -I/usr/local/include my_plugin.c -o my_plugin.so
 */
#ifndef VINEYARDFS_PLUGIN_H_
#define VINEYARDFS_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VY_PLUGIN_ABI_VERSION 1

#define VY_PLUGIN_EXPORT __attribute__((visibility("default")))

/* An object id: bit 63 marks a blob. Printed as "o" + 16 lowercase hex digits. */
typedef uint64_t vy_id;

enum vy_log_level { VY_LOG_ERROR = 0, VY_LOG_WARNING = 1, VY_LOG_INFO = 2, VY_LOG_DEBUG = 3 };

/* An object as a resolver or builder sees it. */
typedef struct vy_object {
  vy_id id;
  const char* type_name; /* "vineyard::Tensor<double>" */
  uint64_t nbytes;       /* sum of the sizes of its blobs */
  int is_blob;           /* 1 for a vineyard::Blob */
  uint64_t size;         /* blobs: payload length in bytes */
  const char* meta_json; /* its meta.json: the stored form, members expanded */
  size_t meta_json_len;
} vy_object;

/* A file sealed in new/, as a builder sees it. */
typedef struct vy_upload {
  const char* name;    /* its name in new/ ("x.npy") */
  const uint8_t* data; /* read-only mapping of its bytes (NULL when size is 0) */
  uint64_t size;
} vy_upload;

typedef struct vy_call vy_call;         /* one resolve or build call */
typedef struct vy_registry vy_registry; /* registrations of the plugin being loaded */

/* Describes object's view through host->add_bytes / host->add_blob_range.
 * Returns 0; -ENOENT when the view does not apply to this object (no file is
 * shown); another negative errno on error (host->set_error says why). */
typedef int (*vy_resolve_fn)(void* arg, vy_call* call, const vy_object* object);

/* Builds upload into objects; *result receives the id the file becomes (an object
 * created during this call). Returns 0, or a negative errno after host->set_error.
 * On failure every object the call created is deleted again. */
typedef int (*vy_build_fn)(void* arg, vy_call* call, const vy_upload* upload, vy_id* result);

typedef struct vy_resolver {
  const char* type_prefix; /* "vineyard::Tensor": matches every typename it starts */
  const char* view_name;   /* "tensor.npy": the file in objects/<id>/views/ */
  vy_resolve_fn resolve;
  void* arg; /* passed back to resolve */
} vy_resolver;

typedef struct vy_builder {
  const char* name;   /* shown in messages */
  const char* suffix; /* claims new/ files whose name ends with it ("" or NULL: none) */
  const void* magic;  /* and/or whose bytes start with these (NULL: none) */
  size_t magic_len;
  vy_build_fn build;
  void* arg;
} vy_builder;

/* The daemon's side, passed to vy_plugin_register. The pointer stays valid until
 * the plugin is unloaded. */
typedef struct vy_host {
  uint32_t abi_version; /* VY_PLUGIN_ABI_VERSION of the daemon */
  uint32_t size;        /* sizeof(vy_host) in the daemon */

  /* Registration: only during vy_plugin_register. The strings are copied.
   * -EINVAL for a malformed registration, -EEXIST for a conflict. */
  int (*register_resolver)(vy_registry* reg, const vy_resolver* resolver);
  int (*register_builder)(vy_registry* reg, const vy_builder* builder);

  /* Logging, into the daemon's log (stderr with -f, else syslog). */
  void (*log)(int level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

  /* Why the current call failed: one line, shown as user.vineyard.error (builders)
   * or in the log (resolvers). */
  void (*set_error)(vy_call* call, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

  /* ---- Metadata ---- */
  /* The object `id`: -ENOENT if there is none. */
  int (*get_object)(vy_call* call, vy_id id, vy_object* out);
  /* The member of `object` named `name` (a field holding {"id": ...}): -ENOENT. */
  int (*get_member)(vy_call* call, const vy_object* object, const char* name, vy_object* out);
  /* The JSON text of top-level field `key` of object's meta.json (NULL if absent). */
  const char* (*get_field)(vy_call* call, const vy_object* object, const char* key, size_t* len);
  /* Field `key` as a string: the decoded value of a JSON string (NULL if absent or
   * not a string). */
  const char* (*get_string)(vy_call* call, const vy_object* object, const char* key,
                            size_t* len);
  /* Field `key` as an integer: a JSON integer, or a string holding one (Vineyard
   * stores some counts as strings). -ENOENT if absent, -EINVAL if not an integer. */
  int (*get_int)(vy_call* call, const vy_object* object, const char* key, int64_t* out);

  /* ---- Payloads ---- */
  /* Maps blob `id` read-only: *data and *size stay valid until the callback returns.
   * -ENOENT if no such blob, -EREMOTE if its payload is not on this node. */
  int (*map_blob)(vy_call* call, vy_id id, const uint8_t** data, uint64_t* size);

  /* ---- Resolvers: the view's segments, in order ---- */
  int (*add_bytes)(vy_call* call, const void* bytes, size_t len);
  int (*add_blob_range)(vy_call* call, vy_id blob, uint64_t offset, uint64_t len);

  /* ---- Builders ---- */
  /* A new blob holding `len` bytes copied from `bytes`. */
  int (*create_blob)(vy_call* call, const void* bytes, uint64_t len, vy_id* out);
  /* A new blob holding bytes [offset, offset+len) of the upload; the copy is made
   * in the kernel (copy_file_range), never through the plugin. */
  int (*create_blob_from_upload)(vy_call* call, uint64_t offset, uint64_t len, vy_id* out);
  /* A metadata object from create-form JSON (DESIGN.md §4): members are fields
   * holding {"id": "o..."}. -EINVAL for bad JSON, -ENOENT for an unknown member. */
  int (*create_object)(vy_call* call, const char* json, size_t len, vy_id* out);
} vy_host;

/* The ABI the plugin was built for. Define it with VY_PLUGIN_ABI; at file scope. */
VY_PLUGIN_EXPORT extern const uint32_t vy_plugin_abi_version;
#define VY_PLUGIN_ABI const uint32_t vy_plugin_abi_version = VY_PLUGIN_ABI_VERSION

/* The entry point every plugin defines. */
VY_PLUGIN_EXPORT int vy_plugin_register(const vy_host* host, vy_registry* reg);

#ifdef __cplusplus
}
#endif

#endif /* VINEYARDFS_PLUGIN_H_ */
