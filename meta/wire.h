// The replication wire format (DESIGN.md §7, the zguide's Clone pattern): every
// message between vineyardfs nodes, frame by frame. This file is the specification;
// Encode() and Decode() are its only implementation, and Decode() validates every
// field, so a malformed or hostile message is refused with a precise Status (the
// caller drops it, logs it and counts it) and never reaches the object table.
//
// A message is a ZeroMQ multipart message. Integers are unsigned big-endian. Frame 0
// of every message is a 4-byte header: 'V' 'Y' <version = 1> <kind>. For PUB/SUB the
// header is also the subscription prefix. (On a ROUTER socket the routing envelope
// precedes frame 0; the transport strips it before Decode.)
//
//   kind 'U' Update          PUB -> SUB: one change of the origin's own state
//   kind 'R' SnapshotRecord  ROUTER -> DEALER: one entry of a snapshot (frames as 'U')
//     frame 1  origin (2) + sequence number (8)                          10 bytes
//              origin: 1..32767; seq >= 1, one counter per origin
//     frame 2  op (1): 1 object put, 2 object delete, 3 name put, 4 name drop
//     frame 3  key: ops 1-2: the object id (8), whose creator bits must be the
//              origin (a node speaks only for its own objects); ops 3-4: the name,
//              1..255 bytes of UTF-8, no '/', no NUL, not "." or ".."
//     frame 4  value:
//              op 1: the object's record, JSON in the journal's record form
//                    (EncodeRecord, meta/object_meta.h) whose "id" is the key and
//                    whose "transient" is false; 2 bytes .. 16 MiB + 4 KiB; the
//                    table then applies the create form's rules (DecodeRecord)
//              op 2: empty
//              op 3: target object id (8) + timestamp ns (8) + writer instance (2)
//              op 4: timestamp ns (8) + writer instance (2)
//              (names are cluster-wide, last writer wins by (timestamp, writer))
//   kind 'H' Heartbeat       PUB -> SUB
//     frame 1  origin (2) + last sequence number published (8) + timestamp ns (8)
//   kind 'S' SnapshotRequest DEALER -> ROUTER
//     frame 1  origin whose state is asked for (2) + requester (2)
//   kind 'E' SnapshotEnd     ROUTER -> DEALER, after the snapshot's records
//     frame 1  origin (2) + the sequence number the snapshot is at (8) + record count (8)
//   kind 'F' FetchRequest    DEALER -> ROUTER: a chunk of a blob's payload
//     frame 1  blob id (8) + offset (8) + length (4), 1 <= length <= kMaxChunk
//   kind 'D' FetchReply      ROUTER -> DEALER
//     frame 1  blob id (8) + offset (8) + the blob's total size (8)
//     frame 2  the bytes: at most kMaxChunk, and offset + size <= total
//   kind 'X' Error           ROUTER -> DEALER: a request that could not be served;
//                            DEALER -> ROUTER: input of the ROUTER's node (an update,
//                            a snapshot record) that the DEALER's node refused (the
//                            ROUTER logs it and does not answer)
//     frame 1  status code (4): what went wrong, as meta/status.h numbers it:
//              1 NotFound (no such origin, blob or persisted payload here),
//              2 InvalidArgument (a malformed request or refused input),
//              4 Busy (replies are queued for clients that do not read them),
//              any other code 1..13 as the payload reader reported it
//     frame 2  a one-line reason, UTF-8, at most 1024 bytes
//
// Nothing is optional and no frame may follow the last one listed: a message with
// another frame count is refused.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "meta/object_id.h"
#include "meta/object_meta.h"
#include "meta/status.h"

namespace vineyard::wire {

using Frames = std::vector<std::string>;

constexpr char kVersion = 1;
constexpr uint32_t kMaxChunk = 4u << 20;        // one fetch request or reply
constexpr size_t kMaxRecord = kMaxRecordBytes;  // the create-form limit plus the fixed fields
constexpr size_t kMaxName = 255;
constexpr size_t kMaxReason = 1024;

enum class Kind : char {
  kUpdate = 'U',
  kSnapshotRecord = 'R',
  kHeartbeat = 'H',
  kSnapshotRequest = 'S',
  kSnapshotEnd = 'E',
  kFetchRequest = 'F',
  kFetchReply = 'D',
  kError = 'X',
};

enum class Op : uint8_t { kObjectPut = 1, kObjectDelete = 2, kNamePut = 3, kNameDrop = 4 };

// An Update or a SnapshotRecord.
struct Change {
  InstanceId origin = 0;
  uint64_t seq = 0;
  Op op = Op::kObjectPut;
  ObjectID id;             // ops 1-2: the object; op 3: the name's target
  std::string name;        // ops 3-4
  std::string record;      // op 1: JSON
  uint64_t timestamp = 0;  // ops 3-4, ns since the epoch
  InstanceId writer = 0;   // ops 3-4
};

struct Heartbeat {
  InstanceId origin = 0;
  uint64_t last_seq = 0;
  uint64_t timestamp = 0;
};

struct SnapshotRequest {
  InstanceId origin = 0;
  InstanceId requester = 0;
};

struct SnapshotEnd {
  InstanceId origin = 0;
  uint64_t seq = 0;
  uint64_t count = 0;
};

struct FetchRequest {
  ObjectID blob;
  uint64_t offset = 0;
  uint32_t length = 0;
};

struct FetchReply {
  ObjectID blob;
  uint64_t offset = 0;
  uint64_t total = 0;
  std::string bytes;
};

struct ErrorReply {
  Status::Code code = Status::Code::kOk;  // never kOk on the wire
  std::string reason;
};

using Body = std::variant<Change, Heartbeat, SnapshotRequest, SnapshotEnd, FetchRequest, FetchReply,
                          ErrorReply>;

struct Message {
  Kind kind = Kind::kUpdate;
  Body body;
};

// The frames of a message. `kind` must match the body (kUpdate or kSnapshotRecord
// for a Change); the body is not validated here: Decode(Encode(m)) refuses what
// Decode would refuse from a peer.
Frames Encode(Kind kind, const Body& body);

// Parses and validates `frames` (see the specification above). InvalidArgument
// with the reason ("update: frame 3: ...") for anything malformed.
Result<Message> Decode(const Frames& frames);

// `text` made a valid Error reason: printable ASCII (other bytes become '?'), at
// most kMaxReason bytes.
std::string OneLine(std::string_view text);

// The 4-byte header of `kind`, also the SUB prefix for it.
std::string Header(Kind kind);

}  // namespace vineyard::wire
