// The errno for a Status. errno is spoken at two edges only: FUSE replies (fs/) and
// the plugin ABI, whose vy_host functions return negative errnos (host/). Both map a
// Status here, so that a plugin and a FUSE caller see the same errno for one failure.
#pragma once

#include "meta/status.h"

namespace vineyard {

int ErrnoFor(const Status& s);

}  // namespace vineyard
