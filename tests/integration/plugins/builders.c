/* Two builders: *.upper makes a blob of the file's bytes in upper case and a
 * "test::Upper" object holding it; *.half creates a blob, then fails (the host must
 * delete the blob again and keep the file). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vineyardfs/plugin.h>

static const vy_host* host;

static int upper(void* arg, vy_call* call, const vy_upload* up, vy_id* result) {
  (void)arg;
  char* bytes = malloc(up->size + 1);
  if (!bytes) return -ENOMEM;
  for (uint64_t i = 0; i < up->size; ++i) bytes[i] = (char)toupper(up->data[i]);
  vy_id blob;
  int rc = host->create_blob(call, bytes, up->size, &blob);
  free(bytes);
  if (rc) return rc;
  char meta[128];
  int n = snprintf(meta, sizeof meta, "{\"typename\":\"test::Upper\",\"text_\":{\"id\":\"o%016llx\"}}",
                   (unsigned long long)blob);
  return host->create_object(call, meta, (size_t)n, result);
}

static int half(void* arg, vy_call* call, const vy_upload* up, vy_id* result) {
  (void)arg;
  (void)result;
  vy_id blob;
  int rc = host->create_blob_from_upload(call, 0, up->size, &blob);
  if (rc) return rc;
  host->set_error(call, "gave up after making blob o%016llx", (unsigned long long)blob);
  return -EIO;
}

VY_PLUGIN_ABI;

int vy_plugin_register(const vy_host* h, vy_registry* reg) {
  host = h;
  vy_builder a = {"upper", ".upper", 0, 0, upper, 0};
  vy_builder b = {"half", ".half", 0, 0, half, 0};
  int rc = h->register_builder(reg, &a);
  return rc ? rc : h->register_builder(reg, &b);
}
