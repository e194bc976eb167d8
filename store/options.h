// StoreOptions: everything store/ is configured by. The field names are the `-o` keys,
// the config-file keys and the `status.json` fields (DESIGN.md §2).
#pragma once

#include <cstdint>
#include <string>

namespace vineyard {

enum class Durability {
  kNone,   // payloads live only in the arena; metadata is still journaled
  kAsync,  // payloads are written to RocksDB behind the seal, by a background thread
  kSync,   // payload and metadata are durable before the seal (close()) returns
};
const char* DurabilityName(Durability d);

struct StoreOptions {
  // Arena capacity in bytes: the most payload bytes held in memory at once.
  // Default: half of RAM.
  uint64_t size = 0;
  // Directory holding one file per blob. As root the store mounts its own tmpfs here
  // (with `size` as the limit) unless one is mounted already.
  // Default: /run/vineyardfs/<instance> (root), /dev/shm/vineyardfs-<instance>.
  std::string arena;
  // RocksDB directory; "none" keeps nothing across restarts.
  // Default: /var/lib/vineyardfs/<instance> (root), ~/.local/state/vineyardfs/<instance>.
  std::string state;
  // When payloads become durable. Default: kAsync.
  Durability durability = Durability::kAsync;
  // Huge-page policy of the arena tmpfs ("never", "within_size", "always", "advise").
  // With any policy but "never", sealed payloads of 2 MiB and more are collapsed into
  // huge pages in the background (store/collapse.cc). Default: "within_size" (measured:
  // "always" costs a 2 MiB page per small blob; see README).
  std::string huge = "within_size";
  // Bytes of arena memory kept written ahead for the payloads the daemon writes itself
  // (remote fetches, reloads, builders' blobs), like Vineyard's reserve_memory: see
  // store/reserve.cc. At most half of `size`. Default: 0 (none).
  uint64_t reserve = 0;
  // How long to wait, in ms, for a previous daemon still holding `state` (it finishes
  // its durable writes after an unmount). Default: 30000.
  int lock_wait_ms = 30000;

  bool stateless() const { return state == "none"; }
};

}  // namespace vineyard
