#include "neutrino/backend/dnnl_util.h"

#include <cstring>
#include <mutex>
#include <unordered_map>

namespace neutrino::kernels::dnnl_util {

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

std::shared_ptr<void> cached(const std::string& key,
                             const std::function<std::shared_ptr<void>()>& make) {
  static std::mutex mutex;
  static std::unordered_map<std::string, std::shared_ptr<void>> cache;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto found = cache.find(key);
    if (found != cache.end()) return found->second;
  }
  // Made outside the lock: two threads may both make it, and the first one stored wins.
  std::shared_ptr<void> made = make();
  std::lock_guard<std::mutex> lock(mutex);
  return cache.emplace(key, std::move(made)).first->second;
}

Tensor scratch(size_t bytes) {
  return Tensor::empty({static_cast<int64_t>((bytes + 3) / 4)}, DType::kFloat32);
}

Convert::Convert(const dnnl::memory::desc& from, const dnnl::memory::desc& to)
    : needed_(from != to), from_(from), to_(to) {
  if (needed_) reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(engine(), from, engine(), to));
}

dnnl::memory Convert::operator()(const dnnl::memory& from, Tensor& keep) const {
  if (!needed_) return from;
  keep = scratch(to_.get_size());
  dnnl::memory to(to_, engine(), keep.data<float>());
  into(from, to);
  return to;
}

dnnl::memory Convert::output_for(const dnnl::memory& user, Tensor& keep) const {
  if (!needed_) return user;
  keep = scratch(from_.get_size());
  return dnnl::memory(from_, engine(), keep.data<float>());
}

void Convert::into(const dnnl::memory& from, const dnnl::memory& to) const {
  if (!needed_) {
    std::memcpy(to.get_data_handle(), from.get_data_handle(), to_.get_size());
    return;
  }
  reorder_.execute(stream(), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
}

void to_bf16(const float* from, uint16_t* to, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, from + i, 4);
    // NaN stays NaN (quiet bit forced); everything else rounds to nearest even.
    const bool nan = (bits & 0x7fffffffu) > 0x7f800000u;
    const uint32_t rounded = bits + 0x7fffu + ((bits >> 16) & 1u);
    to[i] = static_cast<uint16_t>(nan ? (bits >> 16) | 0x40u : rounded >> 16);
  }
}

}  // namespace neutrino::kernels::dnnl_util
