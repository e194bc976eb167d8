/* The README's example plugin: every blob gets views/hello.txt, "hello, " followed by
 * the blob's bytes (a generated segment, then a range of the blob). */
#include <errno.h>
#include <vineyardfs/plugin.h>

static const vy_host* host;

static int resolve(void* arg, vy_call* call, const vy_object* obj) {
  (void)arg;
  static const char head[] = "hello, ";
  int rc = host->add_bytes(call, head, sizeof head - 1);
  return rc ? rc : host->add_blob_range(call, obj->id, 0, obj->size);
}

VY_PLUGIN_ABI;

int vy_plugin_register(const vy_host* h, vy_registry* reg) {
  host = h;
  vy_resolver r = {"vineyard::Blob", "hello.txt", resolve, 0};
  return h->register_resolver(reg, &r);
}
