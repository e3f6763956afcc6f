#include "runners/kvm/host_settings.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace tdxhp::kvm {
namespace {

std::string read_file(const std::string& path, bool* ok) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  *ok = static_cast<bool>(in) || in.eof();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool write_file(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  ::close(fd);
  return ok;
}

std::string journal_path(pid_t pid) {
  return HostSettings::state_dir() + "/host-settings." + std::to_string(pid);
}

// What a signal handler may touch: C strings prepared before any signal can come.
struct SignalPlan {
  std::vector<std::pair<std::string, std::string>> writes;
  std::vector<std::string> rmdirs;
  std::string journal;
};
SignalPlan* g_plan = nullptr;  // replaced (never freed) on every change: handlers may hold it

extern "C" void restore_on_signal(int sig) {
  if (SignalPlan* p = g_plan) {
    for (auto& [path, value] : p->writes) {
      int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC);
      if (fd >= 0) {
        ssize_t n = ::write(fd, value.data(), value.size());
        (void)n;
        ::close(fd);
      }
    }
    for (auto& d : p->rmdirs) ::rmdir(d.c_str());
    ::unlink(p->journal.c_str());
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

HostSettings& HostSettings::get() {
  static HostSettings* s = [] {
    auto* h = new HostSettings();  // lives to exit: atexit restores through it
    std::atexit([] { HostSettings::get().restore_all(); });
    return h;
  }();
  return *s;
}

std::string HostSettings::state_dir() {
  const char* e = std::getenv("TDXHP_STATE_DIR");
  return e && *e ? e : "/run/tdxhp";
}

void HostSettings::save() const {
  nlohmann::json j;
  j["pid"] = getpid();
  for (auto& s : saved_) j["settings"].push_back({{"path", s.path}, {"original", s.original}});
  for (auto& d : dirs_) j["directories"].push_back(d);
  std::error_code ec;  // /run may be missing (the vm target's initramfs): create the chain
  std::filesystem::create_directories(state_dir(), ec);
  const std::string path = journal_path(getpid()), tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << j.dump(1) << "\n";
  }
  std::rename(tmp.c_str(), path.c_str());
  auto* plan = new SignalPlan;
  for (auto& s : saved_) plan->writes.emplace_back(s.path, s.original);
  plan->rmdirs = dirs_;
  plan->journal = path;
  g_plan = plan;
}

void HostSettings::install_signal_restore() {
  if (handlers_) return;
  handlers_ = true;
  // A process that already handles SIGINT/SIGTERM (the tdxhp CLI: finish the step, tear the
  // target down, which restores) keeps its handler; a second signal kills it and the next
  // start recovers from the journal.
  for (int sig : {SIGINT, SIGTERM}) {
    struct sigaction old {};
    sigaction(sig, nullptr, &old);
    if (old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO)) continue;
    struct sigaction sa {};
    sa.sa_handler = restore_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, nullptr);
  }
}

bool HostSettings::set(const std::string& path, const std::string& value, std::string* why) {
  bool ok = false;
  const std::string now = read_file(path, &ok);
  if (!ok) {
    if (why) *why = path + ": cannot read (" + strerror(errno) + ")";
    return false;
  }
  bool known = false;
  for (auto& s : saved_) known = known || s.path == path;
  if (!known) {
    saved_.push_back({path, now});
    save();  // journal first: a kill between the two leaves something to restore
    install_signal_restore();
  }
  if (!write_file(path, value)) {
    if (why) *why = path + ": cannot write " + value + " (" + strerror(errno) + ")";
    return false;
  }
  return true;
}

void HostSettings::own_directory(const std::string& path) {
  dirs_.push_back(path);
  save();
  install_signal_restore();
}

void HostSettings::disown_directory(const std::string& path) {
  std::erase(dirs_, path);
  save();
}

void HostSettings::restore_all() {
  for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) write_file(it->path, it->original);
  for (auto& d : dirs_) ::rmdir(d.c_str());
  saved_.clear();
  dirs_.clear();
  ::unlink(journal_path(getpid()).c_str());
  g_plan = nullptr;
}

std::vector<std::string> HostSettings::recover_stale() {
  std::vector<std::string> done;
  DIR* d = ::opendir(state_dir().c_str());
  if (!d) return done;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.rfind("host-settings.", 0) != 0 || n.find(".tmp") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::strtol(n.c_str() + 14, nullptr, 10));
    if (pid <= 0 || pid == getpid() || ::kill(pid, 0) == 0 || errno == EPERM) continue;
    const std::string path = state_dir() + "/" + n;
    nlohmann::json j = nlohmann::json::parse(std::ifstream(path), nullptr, false);
    if (!j.is_discarded()) {
      for (auto& s : j.value("settings", nlohmann::json::array())) {
        const std::string p = s.value("path", ""), v = s.value("original", "");
        done.push_back(p + " <- " + v + (write_file(p, v) ? "" : " (failed: " + std::string(strerror(errno)) + ")") +
                       " (left by killed pid " + std::to_string(pid) + ")");
      }
      for (auto& dir : j.value("directories", nlohmann::json::array())) {
        const std::string p = dir.get<std::string>();
        if (::rmdir(p.c_str()) == 0 || errno == ENOENT)
          done.push_back("removed " + p + " (left by killed pid " + std::to_string(pid) + ")");
      }
    }
    ::unlink(path.c_str());
  }
  ::closedir(d);
  return done;
}

}  // namespace tdxhp::kvm
