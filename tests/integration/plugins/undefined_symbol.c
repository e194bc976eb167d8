/* Needs a function nothing provides: dlopen(RTLD_NOW) refuses it. */
#include <vineyardfs/plugin.h>
extern int vy_no_such_function(void);
VY_PLUGIN_ABI;
int vy_plugin_register(const vy_host* h, vy_registry* reg) {
  (void)h;
  (void)reg;
  return vy_no_such_function();
}
