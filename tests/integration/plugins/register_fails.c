/* Refuses to register. */
#include <errno.h>
#include <vineyardfs/plugin.h>
VY_PLUGIN_ABI;
int vy_plugin_register(const vy_host* h, vy_registry* reg) {
  (void)h;
  (void)reg;
  return -EPROTO;
}
