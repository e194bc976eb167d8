// arrow_ipc_format.h: what arrow_ipc.cc (writing) and arrow_ipc_read.cc (reading)
// share of the Arrow IPC format: its markers and little-endian loads.
#ifndef VINEYARDFS_PLUGINS_ARROW_IPC_FORMAT_H_
#define VINEYARDFS_PLUGINS_ARROW_IPC_FORMAT_H_

#include <cstdint>
#include <cstring>

namespace vy_arrow {
namespace format {

inline constexpr uint32_t kContinuation = 0xFFFFFFFFu;
inline constexpr char kMagic[] = "ARROW1";
inline constexpr uint64_t kMagicLen = 6;
inline constexpr int kMaxFixedWidth = 1 << 20;  // FixedSizeBinary byteWidth

inline uint64_t Pad8(uint64_t n) { return (n + 7) & ~uint64_t{7}; }

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace format
}  // namespace vy_arrow

#endif  // VINEYARDFS_PLUGINS_ARROW_IPC_FORMAT_H_
