#include "domain/provenance.h"

#include <sys/utsname.h>

#include "tdxhp_version.h"

namespace tdxhp {

std::string tdxhp_version() { return TDXHP_VERSION; }
std::string tdxhp_commit() { return TDXHP_COMMIT; }

std::string kernel_release() {
  utsname u{};
  return uname(&u) == 0 ? u.release : "unknown";
}

}  // namespace tdxhp
