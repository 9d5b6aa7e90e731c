#include "neutrino/core/error.h"

namespace neutrino::detail {

void throw_internal(const char* cond, const char* file, int line) {
  throw InternalError(fmt::format("internal error: {} failed at {}:{} (a bug in neutrino)", cond,
                                  file, line));
}

}  // namespace neutrino::detail
