/* Claims a future ABI version. */
#include <vineyardfs/plugin.h>
const uint32_t vy_plugin_abi_version = 99;
int vy_plugin_register(const vy_host* h, vy_registry* reg) {
  (void)h;
  (void)reg;
  return 0;
}
