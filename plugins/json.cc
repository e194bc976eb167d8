// json.so: Vineyard's scalars and containers -> value.json.
//
//   vineyard::Scalar<T>                 -> the value itself: 42, 1.5, "text", true, null
//   vineyard::Pair                      -> [first_, second_]
//   vineyard::Tuple, vineyard::List,    -> [element 0, element 1, ...] from
//   vineyard::Sequence                     __elements_-size and __elements_-<i>
//
// A container's element that is a Scalar is shown inline (its value); any other
// element is shown by reference, {"id": "o...", "typename": "..."}, which a reader
// follows to objects/<id>/. The view is generated text (metadata only).
#include <vineyardfs/plugin.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "tensor_util.h"

namespace {

using vy_plugins::host;
using vy_plugins::SafeResolve;
using json = nlohmann::ordered_json;

bool StartsWith(const char* s, const char* prefix) {
  return std::strncmp(s, prefix, std::strlen(prefix)) == 0;
}

// A Scalar's value_, typed by its typename (Vineyard sometimes stores numbers as
// strings).
json ScalarValue(vy_call* call, const vy_object* obj) {
  size_t len = 0;
  const char* text = host->get_field(call, obj, "value_", &len);
  if (!text) return nullptr;
  json v = json::parse(text, text + len, nullptr, false);
  if (v.is_discarded()) return nullptr;
  const std::string t = obj->type_name;
  if (v.is_string() && t != "vineyard::Scalar<std::string>" && t != "vineyard::Scalar<str>") {
    const std::string& s = v.get_ref<const std::string&>();
    if (t == "vineyard::Scalar<bool>") return s == "1" || s == "true" || s == "True";
    json n = json::parse(s, nullptr, false);
    if (n.is_number()) return n;
  }
  return v;
}

json Element(vy_call* call, const vy_object* member) {
  if (StartsWith(member->type_name, "vineyard::Scalar")) return ScalarValue(call, member);
  return json{{"id", vy_plugins::IdText(member->id)}, {"typename", member->type_name}};
}

int Emit(vy_call* call, const json& value) {
  std::string text = value.dump(2) + "\n";
  return host->add_bytes(call, text.data(), text.size());
}

int ResolveScalar(void*, vy_call* call, const vy_object* obj) {
  if (!host->get_field(call, obj, "value_", nullptr)) {
    host->set_error(call, "%s has no value_", obj->type_name);
    return -EINVAL;
  }
  return Emit(call, ScalarValue(call, obj));
}

int ResolvePair(void*, vy_call* call, const vy_object* obj) {
  json out = json::array();
  for (const char* name : {"first_", "second_"}) {
    vy_object m;
    if (host->get_member(call, obj, name, &m) != 0) {
      host->set_error(call, "pair member %s is missing", name);
      return -EINVAL;
    }
    out.push_back(Element(call, &m));
  }
  return Emit(call, out);
}

int ResolveSequence(void*, vy_call* call, const vy_object* obj) {
  int64_t n = 0;
  if (host->get_int(call, obj, "__elements_-size", &n) != 0 || n < 0) {
    host->set_error(call, "__elements_-size is missing or not a count");
    return -EINVAL;
  }
  json out = json::array();
  for (int64_t i = 0; i < n; ++i) {
    const std::string name = "__elements_-" + std::to_string(i);
    vy_object m;
    if (host->get_member(call, obj, name.c_str(), &m) != 0) {
      host->set_error(call, "element %lld is missing", static_cast<long long>(i));
      return -EINVAL;
    }
    out.push_back(Element(call, &m));
  }
  return Emit(call, out);
}

}  // namespace

extern "C" {

VY_PLUGIN_ABI;

int vy_plugin_register(const vy_host* h, vy_registry* reg) {
  vy_plugins::host = h;
  const vy_resolver resolvers[] = {
      {"vineyard::Scalar", "value.json", SafeResolve<ResolveScalar>, nullptr},
      {"vineyard::Pair", "value.json", SafeResolve<ResolvePair>, nullptr},
      {"vineyard::Tuple", "value.json", SafeResolve<ResolveSequence>, nullptr},
      {"vineyard::List", "value.json", SafeResolve<ResolveSequence>, nullptr},
      {"vineyard::Sequence", "value.json", SafeResolve<ResolveSequence>, nullptr},
  };
  return vy_plugins::RegisterResolvers(reg, resolvers);
}

}  // extern "C"
