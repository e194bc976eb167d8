// The daemon's side of the plugin ABI (vineyardfs/plugin.h): the vy_host functions
// plugins call, and the two kinds of call into plugins, Resolve and Build.
// Everything a plugin passes in is validated here: bad ranges, unknown ids and
// malformed JSON come back as negative errnos with set_error's message.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "host/errno.h"
#include "host/plugin_internal.h"
#include "meta/log.h"

vy_call::~vy_call() {
  for (auto& b : maps) objects->Unpin(b);
}

namespace vineyard {
namespace {

std::string VFormat(const char* fmt, va_list ap) {
  char buf[1024];
  vsnprintf(buf, sizeof buf, fmt, ap);
  std::string s(buf);
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

// ---- registration ----

bool ValidViewName(const std::string& n) { return ValidateName(n).ok() && n.size() <= 200; }

int RegisterResolver(vy_registry* reg, const vy_resolver* r) {
  if (!reg || !r) return -EINVAL;
  if (!r->type_prefix || !*r->type_prefix || !r->view_name || !r->resolve) {
    if (reg->error.empty())
      reg->error = "a resolver needs a type_prefix, a view_name and a function";
    return -EINVAL;
  }
  if (!ValidViewName(r->view_name)) {
    if (reg->error.empty())
      reg->error = std::string("view name '") + r->view_name + "' is not a usable file name";
    return -EINVAL;
  }
  for (auto& e : reg->resolvers) {
    if (e.prefix == r->type_prefix && e.view == r->view_name) {
      if (reg->error.empty())
        reg->error = "resolver " + e.prefix + " -> " + e.view + " is registered twice";
      return -EEXIST;
    }
  }
  reg->resolvers.push_back(ResolverReg{r->type_prefix, r->view_name, r->resolve, r->arg, nullptr});
  return 0;
}

int RegisterBuilder(vy_registry* reg, const vy_builder* b) {
  if (!reg || !b) return -EINVAL;
  std::string suffix = b->suffix ? b->suffix : "";
  std::string magic =
      b->magic && b->magic_len ? std::string(static_cast<const char*>(b->magic), b->magic_len) : "";
  if (!b->build || (suffix.empty() && magic.empty()) || magic.size() > 64) {
    if (reg->error.empty())
      reg->error = "a builder needs a function and a suffix or magic bytes (at most 64)";
    return -EINVAL;
  }
  reg->builders.push_back(BuilderReg{b->name && *b->name ? b->name : "builder", suffix, magic,
                                     b->build, b->arg, nullptr});
  return 0;
}

void HostLog(int level, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::string msg = VFormat(fmt, ap);
  va_end(ap);
  LogLevel l = level <= VY_LOG_ERROR     ? LogLevel::kError
               : level == VY_LOG_WARNING ? LogLevel::kWarning
               : level == VY_LOG_INFO    ? LogLevel::kInfo
                                         : LogLevel::kDebug;
  Log(l, "plugin: %s", msg.c_str());
}

void SetError(vy_call* call, const char* fmt, ...) {
  if (!call || !fmt) return;
  va_list ap;
  va_start(ap, fmt);
  call->error = VFormat(fmt, ap);
  va_end(ap);
}

int Fail(vy_call* call, int err, std::string why) {
  if (call->error.empty()) call->error = std::move(why);
  return -err;
}

// ---- metadata ----

int FillObject(vy_call* call, ObjectID id, vy_object* out) {
  auto rec = call->objects->table()->Get(id);
  if (!rec) return -ENOENT;
  auto text = call->objects->table()->RenderMeta(id);
  if (!text.ok()) return -ENOENT;
  std::memset(out, 0, sizeof *out);
  out->id = id.raw();
  call->strings.push_back(rec->type_name);
  out->type_name = call->strings.back().c_str();
  out->nbytes = rec->nbytes;
  out->is_blob = rec->is_blob();
  out->size = rec->size;
  call->strings.push_back(std::move(*text));
  out->meta_json = call->strings.back().c_str();
  out->meta_json_len = call->strings.back().size();
  return 0;
}

int GetObject(vy_call* call, vy_id id, vy_object* out) {
  if (!call || !out) return -EINVAL;
  return FillObject(call, ObjectID(id), out);
}

const nlohmann::json* MetaOf(vy_call* call, const vy_object* obj) {
  if (!obj || !obj->meta_json) return nullptr;
  auto it = call->metas.find(obj->id);
  if (it != call->metas.end()) return &it->second;
  auto j = nlohmann::json::parse(obj->meta_json, obj->meta_json + obj->meta_json_len, nullptr,
                                 /*allow_exceptions=*/false);
  if (!j.is_object()) return nullptr;
  return &call->metas.emplace(obj->id, std::move(j)).first->second;
}

const nlohmann::json* FieldOf(vy_call* call, const vy_object* obj, const char* key) {
  if (!call || !key) return nullptr;
  const nlohmann::json* m = MetaOf(call, obj);
  if (!m) return nullptr;
  auto it = m->find(key);
  return it == m->end() ? nullptr : &*it;
}

int GetMember(vy_call* call, const vy_object* obj, const char* name, vy_object* out) {
  if (!call || !out) return -EINVAL;
  const nlohmann::json* f = FieldOf(call, obj, name);
  if (!f || !f->is_object() || !f->contains("id") || !(*f)["id"].is_string()) return -ENOENT;
  auto id = ObjectID::Parse((*f)["id"].get<std::string>());
  if (!id.ok()) return -ENOENT;
  return FillObject(call, *id, out);
}

const char* GetField(vy_call* call, const vy_object* obj, const char* key, size_t* len) {
  const nlohmann::json* f = FieldOf(call, obj, key);
  if (!f) return nullptr;
  call->strings.push_back(f->dump());
  if (len) *len = call->strings.back().size();
  return call->strings.back().c_str();
}

const char* GetString(vy_call* call, const vy_object* obj, const char* key, size_t* len) {
  const nlohmann::json* f = FieldOf(call, obj, key);
  if (!f || !f->is_string()) return nullptr;
  call->strings.push_back(f->get<std::string>());
  if (len) *len = call->strings.back().size();
  return call->strings.back().c_str();
}

int GetInt(vy_call* call, const vy_object* obj, const char* key, int64_t* out) {
  const nlohmann::json* f = FieldOf(call, obj, key);
  if (!f) return -ENOENT;
  if (f->is_number_integer()) {
    *out = f->get<int64_t>();
    return 0;
  }
  if (f->is_string()) {
    const std::string& s = f->get_ref<const std::string&>();
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && *end == '\0' && errno == 0) {
      *out = v;
      return 0;
    }
  }
  return -EINVAL;
}

// ---- payloads ----

int MapBlob(vy_call* call, vy_id raw, const uint8_t** data, uint64_t* size) {
  if (!call || !data || !size) return -EINVAL;
  auto b = call->objects->Pin(ObjectID(raw));
  if (!b.ok()) return Fail(call, ErrnoFor(b.status()), b.status().message());
  call->maps.push_back(*b);
  *data = reinterpret_cast<const uint8_t*>(b->data);
  *size = b->size;
  return 0;
}

// ---- views ----

int AddBytes(vy_call* call, const void* bytes, size_t len) {
  if (!call || !call->view) return -EINVAL;
  if (len == 0) return 0;
  if (!bytes) return -EINVAL;
  ViewSegment seg;
  seg.length = len;
  seg.bytes.assign(static_cast<const char*>(bytes), len);
  call->view->size += len;
  call->view->segments.push_back(std::move(seg));
  return 0;
}

int AddBlobRange(vy_call* call, vy_id raw, uint64_t offset, uint64_t len) {
  if (!call || !call->view) return -EINVAL;
  ObjectID id(raw);
  auto rec = call->objects->table()->Get(id);
  if (!rec || !rec->is_blob()) return Fail(call, ENOENT, "no blob " + id.ToString());
  if (offset > rec->size || len > rec->size - offset) {
    return Fail(call, EINVAL,
                "range [" + std::to_string(offset) + ", +" + std::to_string(len) + ") is outside " +
                    id.ToString() + " (" + std::to_string(rec->size) + " bytes)");
  }
  if (len == 0) return 0;
  ViewSegment seg;
  seg.length = len;
  seg.blob = id;
  seg.blob_offset = offset;
  call->view->size += len;
  call->view->segments.push_back(std::move(seg));
  return 0;
}

// ---- builders ----

int Created(vy_call* call, Result<ObjectRecord> rec, vy_id* out) {
  if (!rec.ok()) {
    if (rec.status().code() == Status::Code::kNoSpace) call->no_space = true;
    return Fail(call, ErrnoFor(rec.status()), rec.status().message());
  }
  call->created.push_back(rec->id);
  if (out) *out = rec->id.raw();
  return 0;
}

}  // namespace

namespace {

int CreateBlob(vy_call* call, const void* bytes, uint64_t len, vy_id* out) {
  if (!call || !call->building) return -EINVAL;
  if (len && !bytes) return -EINVAL;
  return Created(call, call->objects->CreateBlob(bytes, len, call->owner), out);
}

int CreateBlobFromUpload(vy_call* call, uint64_t offset, uint64_t len, vy_id* out) {
  if (!call || !call->building) return -EINVAL;
  if (offset > call->upload_size || len > call->upload_size - offset) {
    return Fail(call, EINVAL,
                "range [" + std::to_string(offset) + ", +" + std::to_string(len) +
                    ") is outside the upload (" + std::to_string(call->upload_size) + " bytes)");
  }
  return Created(call, call->objects->CreateBlobFrom(call->upload_fd, offset, len, call->owner),
                 out);
}

int CreateObject(vy_call* call, const char* json, size_t len, vy_id* out) {
  if (!call || !call->building || !json) return -EINVAL;
  auto spec = ParseCreateMeta(std::string_view(json, len));
  if (!spec.ok()) return Fail(call, ErrnoFor(spec.status()), spec.status().message());
  return Created(call, call->objects->CreateMeta(*spec, call->owner), out);
}

}  // namespace

const vy_host kVyHost = {
    VY_PLUGIN_ABI_VERSION,
    sizeof(vy_host),
    RegisterResolver,
    RegisterBuilder,
    HostLog,
    SetError,
    GetObject,
    GetMember,
    GetField,
    GetString,
    GetInt,
    MapBlob,
    AddBytes,
    AddBlobRange,
    CreateBlob,
    CreateBlobFromUpload,
    CreateObject,
};

// ---- calls into plugins ----

namespace {

// Calls into a plugin. The ABI is C, but a C++ plugin may still let an exception
// escape: it fails the call instead of ending the daemon.
template <typename Fn>
int Guarded(vy_call* call, Fn fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    call->error = std::string("the plugin threw: ") + e.what();
  } catch (...) {
    call->error = "the plugin threw an exception";
  }
  return -EIO;
}

// The resolver that wins view `name` for `type_name`: the longest matching prefix.
const ResolverReg* Winner(const PluginHost::Registry& reg, const std::string& type_name,
                          const std::string& name) {
  auto it = reg.by_view.find(name);
  if (it == reg.by_view.end()) return nullptr;
  const size_t* i = it->second.Match(type_name);
  return i ? &reg.resolvers[*i] : nullptr;
}

}  // namespace

std::vector<std::string> PluginHost::ViewNames(const ObjectRecord& rec) {
  auto reg = registry();
  std::vector<std::string> out;  // by_view is ordered: so is the listing
  for (auto& [view, matcher] : reg->by_view) {
    if (matcher.Match(rec.type_name) && Resolve(rec.id, view).ok()) out.push_back(view);
  }
  return out;
}

Result<std::shared_ptr<const ResolvedView>> PluginHost::Resolve(ObjectID id,
                                                                const std::string& name) {
  std::shared_ptr<const Registry> reg;
  uint64_t gen;
  {
    MutexLock lock(&mu_);
    auto it = views_.find({id.raw(), name});
    if (it != views_.end() && it->second.first == generation_) {
      if (!it->second.second) return Status::NotFound("views/" + name);
      return it->second.second;
    }
    reg = registry_;
    gen = generation_;
  }
  vy_call call;
  call.objects = objects_;
  vy_object obj;
  if (FillObject(&call, id, &obj) != 0) return Status::NotFound(id.ToString());
  const ResolverReg* r = Winner(*reg, obj.type_name, name);
  if (!r) return Status::NotFound("views/" + name);
  auto view = std::make_shared<ResolvedView>();
  view->plugin = r->plugin->file;
  call.view = view.get();
  int rc = Guarded(&call, [&] { return r->fn(r->arg, &call, &obj); });
  std::shared_ptr<const ResolvedView> result;
  Status status = Status::OK();
  if (rc == -ENOENT) {
    status = Status::NotFound("views/" + name + " does not apply to " + id.ToString());
  } else if (rc != 0) {
    status = Status::IOError("resolver " + r->prefix + " -> " + name + " (" + r->plugin->file +
                             ") failed on " + id.ToString() + ": " +
                             (call.error.empty() ? std::strerror(-rc) : call.error));
    VY_LOG_WARN("%s", status.message().c_str());
  } else {
    result = view;
  }
  {
    MutexLock lock(&mu_);
    if (gen == generation_) {
      uint64_t bytes = 0;
      for (auto& s : view->segments) bytes += s.bytes.size();
      if (views_bytes_ + bytes > (64u << 20) || views_.size() >= 65536) {
        views_.clear();
        views_bytes_ = 0;
      }
      if (status.ok() || status.code() == Status::Code::kNotFound) {
        views_[{id.raw(), name}] = {gen, result};
        views_bytes_ += bytes;
      }
    }
  }
  if (!status.ok()) return status;
  return result;
}

std::optional<Result<ObjectID>> PluginHost::Build(const std::string& name, int fd, uint64_t size,
                                                  Owner owner) {
  auto reg = registry();
  const BuilderReg* chosen = nullptr;
  for (auto& b : reg->builders) {  // the longest matching suffix
    if (b.suffix.empty() || name.size() < b.suffix.size() ||
        name.compare(name.size() - b.suffix.size(), b.suffix.size(), b.suffix) != 0) {
      continue;
    }
    if (!chosen || b.suffix.size() > chosen->suffix.size()) chosen = &b;
  }
  if (!chosen) {
    char head[64];
    ssize_t n = pread(fd, head, sizeof head, 0);
    for (auto& b : reg->builders) {
      if (!b.magic.empty() && n >= static_cast<ssize_t>(b.magic.size()) &&
          std::memcmp(head, b.magic.data(), b.magic.size()) == 0) {
        chosen = &b;
        break;
      }
    }
  }
  if (!chosen) return std::nullopt;

  vy_call call;
  call.objects = objects_;
  call.building = true;
  call.upload_fd = fd;
  call.upload_size = size;
  call.owner = owner;
  void* map = nullptr;
  if (size > 0) {
    map = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) return Result<ObjectID>(Status::FromErrno("map new/" + name, errno));
  }
  vy_upload up{name.c_str(), static_cast<const uint8_t*>(map), size};
  vy_id result = 0;
  int rc = Guarded(&call, [&] { return chosen->fn(chosen->arg, &call, &up, &result); });
  if (map) munmap(map, size);
  const std::string who = "builder " + chosen->name + " (" + chosen->plugin->file + ")";
  Status status = Status::OK();
  if (rc != 0) {
    std::string why = call.error.empty() ? std::strerror(rc < 0 ? -rc : EIO) : call.error;
    status = call.no_space ? Status::NoSpace(who + ": " + why) : Status::IOError(who + ": " + why);
  } else if (std::find(call.created.begin(), call.created.end(), ObjectID(result)) ==
             call.created.end()) {
    status = Status::IOError(who + " returned " + ObjectID(result).ToString() +
                             ", which it did not create");
  }
  if (!status.ok()) {
    call.objects->Undo(call.created);  // newest first: members go after their holders
    return Result<ObjectID>(status);
  }
  return Result<ObjectID>(ObjectID(result));
}

}  // namespace vineyard
