/* Has the ABI symbol but no vy_plugin_register. */
#include <vineyardfs/plugin.h>
VY_PLUGIN_ABI;
