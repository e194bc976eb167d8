// The replication wire format: see wire.h for the specification.
#include "meta/wire.h"

#include <nlohmann/json.hpp>

namespace vineyard::wire {

namespace {

// ---- big-endian fields ----

template <typename T>
void Put(std::string* out, T v) {
  for (int i = sizeof(T) - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

template <typename T>
T Get(const std::string& s, size_t at) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}

bool ValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n;
    uint32_t cp;
    if ((c >> 5) == 0x6) {
      n = 1, cp = c & 0x1f;
    } else if ((c >> 4) == 0xe) {
      n = 2, cp = c & 0x0f;
    } else if ((c >> 3) == 0x1e) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      const unsigned char cc = s[i + k];
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates, beyond U+10FFFF.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

Status Bad(const char* what, const std::string& why) {
  return Status::InvalidArgument(std::string(what) + ": " + why);
}

Status CheckInstance(const char* what, const char* field, InstanceId id) {
  if (id == 0 || id > kMaxInstance) {
    return Bad(what, std::string(field) + " " + std::to_string(id) + " is not an instance id (1.." +
                         std::to_string(kMaxInstance) + ")");
  }
  return Status::OK();
}

Status CheckName(const char* what, const std::string& name) {
  if (name.empty() || name.size() > kMaxName) {
    return Bad(what, "frame 3: a name has 1.." + std::to_string(kMaxName) + " bytes, not " +
                         std::to_string(name.size()));
  }
  if (name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    return Bad(what, "frame 3: the name contains '/' or NUL, or is '.' or '..'");
  }
  if (!ValidUtf8(name)) return Bad(what, "frame 3: the name is not UTF-8");
  return Status::OK();
}

Status CheckSize(const char* what, int frame, const std::string& f, size_t want) {
  if (f.size() != want) {
    return Bad(what, "frame " + std::to_string(frame) + " has " + std::to_string(f.size()) +
                         " bytes, not " + std::to_string(want));
  }
  return Status::OK();
}

Result<Message> DecodeChange(Kind kind, const Frames& f) {
  const char* what = kind == Kind::kUpdate ? "update" : "snapshot record";
  VY_RETURN_IF_ERROR(CheckSize(what, 1, f[1], 10));
  Change c;
  c.origin = Get<uint16_t>(f[1], 0);
  c.seq = Get<uint64_t>(f[1], 2);
  VY_RETURN_IF_ERROR(CheckInstance(what, "origin", c.origin));
  if (c.seq == 0) return Bad(what, "sequence number 0 (they start at 1)");
  VY_RETURN_IF_ERROR(CheckSize(what, 2, f[2], 1));
  const uint8_t op = static_cast<uint8_t>(f[2][0]);
  if (op < 1 || op > 4) return Bad(what, "frame 2: unknown op " + std::to_string(op));
  c.op = static_cast<Op>(op);
  const std::string& key = f[3];
  const std::string& value = f[4];
  if (c.op == Op::kObjectPut || c.op == Op::kObjectDelete) {
    VY_RETURN_IF_ERROR(CheckSize(what, 3, key, 8));
    c.id = ObjectID(Get<uint64_t>(key, 0));
    if (!c.id.valid()) return Bad(what, "frame 3: object id 0");
    if (c.id.instance() != c.origin) {
      return Bad(what, "frame 3: " + c.id.ToString() + " was created by instance " +
                           std::to_string(c.id.instance()) + ", not by the origin " +
                           std::to_string(c.origin));
    }
    if (c.op == Op::kObjectDelete) {
      VY_RETURN_IF_ERROR(CheckSize(what, 4, value, 0));
    } else {
      if (value.size() < 2 || value.size() > kMaxRecord) {
        return Bad(what, "frame 4: a record has 2.." + std::to_string(kMaxRecord) + " bytes");
      }
      auto doc = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
      if (doc.is_discarded() || !doc.is_object()) {
        return Bad(what, "frame 4: the record is not a JSON object");
      }
      auto id = doc.find("id");
      if (id == doc.end() || !id->is_string() || *id != c.id.ToString()) {
        return Bad(what, "frame 4: the record's \"id\" is not " + c.id.ToString());
      }
      c.record = value;
    }
  } else {
    VY_RETURN_IF_ERROR(CheckName(what, key));
    c.name = key;
    size_t at = 0;
    if (c.op == Op::kNamePut) {
      VY_RETURN_IF_ERROR(CheckSize(what, 4, value, 18));
      c.id = ObjectID(Get<uint64_t>(value, 0));
      if (!c.id.valid()) return Bad(what, "frame 4: the name's target is object id 0");
      at = 8;
    } else {
      VY_RETURN_IF_ERROR(CheckSize(what, 4, value, 10));
    }
    c.timestamp = Get<uint64_t>(value, at);
    c.writer = Get<uint16_t>(value, at + 8);
    VY_RETURN_IF_ERROR(CheckInstance(what, "writer", c.writer));
  }
  return Message{kind, std::move(c)};
}

// A FetchReply's 3 frames.
Result<Message> DecodeFetchReply(const Frames& f) {
  VY_RETURN_IF_ERROR(CheckSize("fetch reply", 1, f[1], 24));
  FetchReply d{ObjectID(Get<uint64_t>(f[1], 0)), Get<uint64_t>(f[1], 8), Get<uint64_t>(f[1], 16),
               f[2]};
  if (!d.blob.is_blob()) return Bad("fetch reply", d.blob.ToString() + " is not a blob id");
  if (d.bytes.size() > kMaxChunk || d.offset > d.total || d.bytes.size() > d.total - d.offset) {
    return Bad("fetch reply", std::to_string(d.bytes.size()) + " bytes at " +
                                  std::to_string(d.offset) + " overrun a blob of " +
                                  std::to_string(d.total) + " (or exceed one chunk)");
  }
  return Message{Kind::kFetchReply, std::move(d)};
}

// An Error's 3 frames.
Result<Message> DecodeError(const Frames& f) {
  VY_RETURN_IF_ERROR(CheckSize("error", 1, f[1], 4));
  const uint32_t code = Get<uint32_t>(f[1], 0);
  const auto last = static_cast<uint32_t>(Status::Code::kLastCode);
  if (code == 0 || code > last) {
    return Bad("error", "status code " + std::to_string(code) + " is out of range (1.." +
                            std::to_string(last) + ")");
  }
  ErrorReply x{static_cast<Status::Code>(code), f[2]};
  if (x.reason.size() > kMaxReason || !ValidUtf8(x.reason) ||
      x.reason.find('\n') != std::string::npos) {
    return Bad("error", "frame 2: the reason is not one line of UTF-8 of at most " +
                            std::to_string(kMaxReason) + " bytes");
  }
  return Message{Kind::kError, std::move(x)};
}

}  // namespace

std::string OneLine(std::string_view text) {
  std::string out(text.substr(0, kMaxReason));
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

std::string Header(Kind kind) { return {'V', 'Y', kVersion, static_cast<char>(kind)}; }

Frames Encode(Kind kind, const Body& body) {
  Frames f{Header(kind)};
  std::string a;
  if (auto* c = std::get_if<Change>(&body)) {
    Put<uint16_t>(&a, c->origin);
    Put<uint64_t>(&a, c->seq);
    f.push_back(a);
    f.push_back(std::string(1, static_cast<char>(c->op)));
    std::string key, value;
    if (c->op == Op::kObjectPut || c->op == Op::kObjectDelete) {
      Put<uint64_t>(&key, c->id.raw());
      if (c->op == Op::kObjectPut) value = c->record;
    } else {
      key = c->name;
      if (c->op == Op::kNamePut) Put<uint64_t>(&value, c->id.raw());
      Put<uint64_t>(&value, c->timestamp);
      Put<uint16_t>(&value, c->writer);
    }
    f.push_back(key);
    f.push_back(value);
  } else if (auto* h = std::get_if<Heartbeat>(&body)) {
    Put<uint16_t>(&a, h->origin);
    Put<uint64_t>(&a, h->last_seq);
    Put<uint64_t>(&a, h->timestamp);
    f.push_back(a);
  } else if (auto* r = std::get_if<SnapshotRequest>(&body)) {
    Put<uint16_t>(&a, r->origin);
    Put<uint16_t>(&a, r->requester);
    f.push_back(a);
  } else if (auto* e = std::get_if<SnapshotEnd>(&body)) {
    Put<uint16_t>(&a, e->origin);
    Put<uint64_t>(&a, e->seq);
    Put<uint64_t>(&a, e->count);
    f.push_back(a);
  } else if (auto* q = std::get_if<FetchRequest>(&body)) {
    Put<uint64_t>(&a, q->blob.raw());
    Put<uint64_t>(&a, q->offset);
    Put<uint32_t>(&a, q->length);
    f.push_back(a);
  } else if (auto* d = std::get_if<FetchReply>(&body)) {
    Put<uint64_t>(&a, d->blob.raw());
    Put<uint64_t>(&a, d->offset);
    Put<uint64_t>(&a, d->total);
    f.push_back(a);
    f.push_back(d->bytes);
  } else if (auto* x = std::get_if<ErrorReply>(&body)) {
    Put<uint32_t>(&a, static_cast<uint32_t>(x->code));
    f.push_back(a);
    f.push_back(x->reason);
  }
  return f;
}

Result<Message> Decode(const Frames& f) {
  if (f.empty()) return Status::InvalidArgument("message: no frames");
  const std::string& h = f[0];
  if (h.size() != 4 || h[0] != 'V' || h[1] != 'Y') {
    return Status::InvalidArgument("message: frame 0 is not a vineyardfs header");
  }
  if (h[2] != kVersion) {
    return Status::InvalidArgument("message: wire version " +
                                   std::to_string(static_cast<unsigned char>(h[2])) +
                                   ", this node speaks " + std::to_string(kVersion));
  }
  const Kind kind = static_cast<Kind>(h[3]);
  auto frames = [&](const char* what, size_t n) -> Status {
    if (f.size() != n) {
      return Bad(what, std::to_string(f.size()) + " frames, not " + std::to_string(n));
    }
    return Status::OK();
  };
  switch (kind) {
    case Kind::kUpdate:
    case Kind::kSnapshotRecord:
      VY_RETURN_IF_ERROR(frames(kind == Kind::kUpdate ? "update" : "snapshot record", 5));
      return DecodeChange(kind, f);
    case Kind::kHeartbeat: {
      VY_RETURN_IF_ERROR(frames("heartbeat", 2));
      VY_RETURN_IF_ERROR(CheckSize("heartbeat", 1, f[1], 18));
      Heartbeat b{Get<uint16_t>(f[1], 0), Get<uint64_t>(f[1], 2), Get<uint64_t>(f[1], 10)};
      VY_RETURN_IF_ERROR(CheckInstance("heartbeat", "origin", b.origin));
      return Message{kind, b};
    }
    case Kind::kSnapshotRequest: {
      VY_RETURN_IF_ERROR(frames("snapshot request", 2));
      VY_RETURN_IF_ERROR(CheckSize("snapshot request", 1, f[1], 4));
      SnapshotRequest r{Get<uint16_t>(f[1], 0), Get<uint16_t>(f[1], 2)};
      VY_RETURN_IF_ERROR(CheckInstance("snapshot request", "origin", r.origin));
      VY_RETURN_IF_ERROR(CheckInstance("snapshot request", "requester", r.requester));
      return Message{kind, r};
    }
    case Kind::kSnapshotEnd: {
      VY_RETURN_IF_ERROR(frames("snapshot end", 2));
      VY_RETURN_IF_ERROR(CheckSize("snapshot end", 1, f[1], 18));
      SnapshotEnd e{Get<uint16_t>(f[1], 0), Get<uint64_t>(f[1], 2), Get<uint64_t>(f[1], 10)};
      VY_RETURN_IF_ERROR(CheckInstance("snapshot end", "origin", e.origin));
      return Message{kind, e};
    }
    case Kind::kFetchRequest: {
      VY_RETURN_IF_ERROR(frames("fetch request", 2));
      VY_RETURN_IF_ERROR(CheckSize("fetch request", 1, f[1], 20));
      FetchRequest q{ObjectID(Get<uint64_t>(f[1], 0)), Get<uint64_t>(f[1], 8),
                     Get<uint32_t>(f[1], 16)};
      if (!q.blob.is_blob()) return Bad("fetch request", q.blob.ToString() + " is not a blob id");
      if (q.length == 0 || q.length > kMaxChunk) {
        return Bad("fetch request", "length " + std::to_string(q.length) + " is not in 1.." +
                                        std::to_string(kMaxChunk));
      }
      return Message{kind, q};
    }
    case Kind::kFetchReply:
      VY_RETURN_IF_ERROR(frames("fetch reply", 3));
      return DecodeFetchReply(f);
    case Kind::kError:
      VY_RETURN_IF_ERROR(frames("error", 3));
      return DecodeError(f);
  }
  return Status::InvalidArgument("message: unknown kind " +
                                 std::to_string(static_cast<unsigned char>(h[3])));
}

}  // namespace vineyard::wire
