// arrow_columns.h: the columns of arrow.so's views. A column object (a 1-D NumPy-layout
// Tensor or one of Vineyard's Arrow arrays) becomes an Arrow field and its buffers,
// each a range of a blob where the layouts agree, else bytes the plugin generates
// (bit-packed bools, utf8 offsets and bytes of fixed-width NumPy strings, bitmaps at a
// bit offset). arrow.cc writes them out as Arrow IPC files.
#ifndef VINEYARDFS_PLUGINS_ARROW_COLUMNS_H_
#define VINEYARDFS_PLUGINS_ARROW_COLUMNS_H_

#include <vineyardfs/plugin.h>

#include <cstdint>
#include <string>
#include <vector>

#include "arrow_ipc.h"

namespace vy_arrow_view {

// One buffer of a view's column: bytes the plugin made, or a range of a blob.
struct Buf {
  std::string bytes;
  vy_id blob = 0;  // nonzero: a blob range
  uint64_t offset = 0, length = 0;
  uint64_t size() const { return blob ? length : bytes.size(); }
};

struct ViewColumn {
  vy_arrow::Field field;
  uint64_t length = 0, null_count = 0;
  std::vector<Buf> bufs;  // BufferCount(field.type) of them
};

using ViewBatch = std::vector<ViewColumn>;

// Sets the call's error to `msg`; returns false.
bool Error(vy_call* call, const std::string& msg);
// Maps `blob` (nothing for an empty one); false with the call's error set on failure.
bool Map(vy_call* call, const vy_object& blob, const uint8_t** data);
// Any column object, named `name` in the view: a Tensor or one of Vineyard's Arrow
// arrays. False with the call's error set when it is neither or is malformed.
bool AnyColumn(vy_call* call, const vy_object* obj, const std::string& name, ViewColumn* out);

}  // namespace vy_arrow_view

#endif  // VINEYARDFS_PLUGINS_ARROW_COLUMNS_H_
