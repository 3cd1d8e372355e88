// phalanxctl: operate a Phalanx cluster from one of its machines.
//
//   phalanxctl status [--socket PATH]... [--dir DIR] [--cluster NAME] [--json]
//   phalanxctl drain  [--socket PATH] [--dir DIR] [--cluster NAME] [--timeout-s S]
//
// Asks members for their status over their Unix status sockets (see runtime/status_report.hpp
// for the document) and prints one cluster view: the master's membership, epoch and keepalive
// interval n, loss estimates, worksets per member, plus each member's own role, sessions and
// drop counters. Without --socket it asks every socket in DIR (default /run/phalanx), of
// cluster NAME if given. Exit 0 when at least one member answered, 1 otherwise, 2 on usage.
//
// drain: stops one member (its socket; or the only one found) without losing a connection: it
// sends the daemon SIGTERM (its pid from the status document), which moves every workset it
// owns to other members, those with live sessions to their backups together with the sessions,
// then leaves the cluster and exits. Prints progress (worksets still owned, sessions) until the
// member has exited. Exit 0 when it exited in time, 1 otherwise.
#include <fmt/format.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runtime/unique_fd.hpp"

namespace {

using nlohmann::json;
using phalanx::runtime::UniqueFd;

// One member's document, or why there is none.
struct Answer {
  std::string socket;
  std::optional<json> status;
  std::string error;
};

Answer ask(const std::string& path) {
  Answer a{path, std::nullopt, ""};
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) {
    a.error = "path too long";
    return a;
  }
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const timeval timeout{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    a.error = std::strerror(errno);
    return a;
  }
  std::string body;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      a.error = std::strerror(errno);
      return a;
    }
    if (n == 0) {
      break;
    }
    body.append(buf, static_cast<std::size_t>(n));
  }
  try {
    a.status = json::parse(body);
  } catch (const json::exception& e) {
    a.error = std::string("bad status document: ") + e.what();
  }
  return a;
}

std::vector<std::string> find_sockets(const std::string& dir, const std::string& cluster) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (e.path().extension() != ".sock") {
      continue;
    }
    if (!cluster.empty() && name.rfind(cluster + "-", 0) != 0) {
      continue;
    }
    out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The view to trust for membership: the master's own report of the newest epoch, else any
// member's (the one with the newest epoch).
const json* authority(const std::vector<Answer>& answers) {
  const json* best = nullptr;
  auto epoch_of = [](const json& j) { return j.value("epoch", std::uint64_t{0}); };
  for (const auto& a : answers) {
    if (!a.status) {
      continue;
    }
    const json& j = *a.status;
    const bool is_master = j.value("role", "") == "master";
    if (best == nullptr) {
      best = &j;
      continue;
    }
    const bool best_master = best->value("role", "") == "master";
    if (epoch_of(j) > epoch_of(*best) ||
        (epoch_of(j) == epoch_of(*best) && is_master && !best_master)) {
      best = &j;
    }
  }
  return best;
}

json merge(const std::vector<Answer>& answers) {
  json out;
  json views = json::array();
  json errors = json::object();
  std::map<std::string, const json*> own;  // member address -> its own report
  for (const auto& a : answers) {
    if (a.status) {
      views.push_back(*a.status);
      own[a.status->value("member", "")] = &*a.status;
    } else {
      errors[a.socket] = a.error;
    }
  }
  const json* auth = authority(answers);
  out["cluster"] = auth ? (*auth)["cluster"] : json(nullptr);
  out["cluster_ip"] = auth ? (*auth)["cluster_ip"] : json(nullptr);
  out["mode"] = auth ? (*auth)["mode"] : json(nullptr);
  out["master"] = auth ? (*auth)["master"] : json(nullptr);
  out["epoch"] = auth ? (*auth)["epoch"] : json(nullptr);
  out["keepalive_n"] = auth ? (*auth)["keepalive_n"] : json(nullptr);
  out["failure_interval_ms"] = auth ? (*auth)["failure_interval_ms"] : json(nullptr);
  // Distinct masters claimed by the members that answered (more than one: a partition).
  json masters = json::array();
  for (const auto& a : answers) {
    if (a.status && a.status->value("role", "") == "master") {
      masters.push_back((*a.status)["member"]);
    }
  }
  out["masters"] = masters;
  json members = json::array();
  std::vector<std::string> listed;
  if (auth) {
    for (const auto& m : (*auth)["members"]) {
      json e;
      const std::string addr = m.value("address", "");
      listed.push_back(addr);
      e["address"] = addr;
      e["in_cluster"] = true;
      e["worksets"] = m["worksets"];
      e["loss_estimate"] = m["loss_estimate"];
      e["mac"] = m["mac"];
      members.push_back(e);
    }
  }
  for (const auto& [addr, j] : own) {  // members that answered but are not in the list
    if (std::find(listed.begin(), listed.end(), addr) == listed.end()) {
      json e;
      e["address"] = addr;
      e["in_cluster"] = false;
      e["worksets"] = j->value("owned", json::array()).size();
      e["loss_estimate"] = nullptr;
      e["mac"] = (*j)["mac"];
      members.push_back(e);
    }
  }
  for (auto& e : members) {
    auto it = own.find(e["address"].get<std::string>());
    if (it == own.end()) {
      e["reachable"] = false;
      e["role"] = nullptr;
      e["sessions"] = nullptr;
      e["serving"] = nullptr;
      e["drops"] = nullptr;
      continue;
    }
    const json& j = *it->second;
    e["reachable"] = true;
    e["role"] = j["role"];
    e["epoch"] = j["epoch"];
    e["master"] = j["master"];
    e["keepalive_n"] = j["keepalive_n"];
    e["sessions"] = j["sessions"];
    e["serving"] = j["owned"].size();
    e["drops"] = j["drops"];
    // Who claimed the cluster IP, and how often we answered (issue 9, part 7); pauses noticed.
    json events = json::object();
    for (const char* name : {"arp_conflicts", "arp_defences", "arp_defences_deferred", "stalls",
                             "stalls_beyond_failure_interval", "stall_max_ms"}) {
      if (j["counters"].is_object() && j["counters"].contains(name)) {
        events[name] = j["counters"][name];
      }
    }
    e["events"] = events;
  }
  out["members"] = members;
  out["views"] = views;
  out["errors"] = errors;
  return out;
}

std::string cell(const json& v) {
  if (v.is_null()) {
    return "-";
  }
  if (v.is_string()) {
    return v.get<std::string>();
  }
  if (v.is_number_float()) {
    return fmt::format("{:.4f}", v.get<double>());
  }
  return v.dump();
}

void print_human(const json& s) {
  fmt::print("cluster {}  ip {}  mode {}\n", cell(s["cluster"]), cell(s["cluster_ip"]),
             cell(s["mode"]));
  fmt::print("master {}  epoch {}  keepalive n={} per T={} ms\n", cell(s["master"]),
             cell(s["epoch"]), cell(s["keepalive_n"]), cell(s["failure_interval_ms"]));
  if (s["masters"].size() > 1) {
    fmt::print("WARNING: {} members claim to be master: {}\n", s["masters"].size(),
               s["masters"].dump());
  }
  fmt::print("\n{:<16} {:<9} {:>8} {:>8} {:>8} {:>9}  {:<17}  {}\n", "MEMBER", "ROLE", "WORKSETS",
             "SERVING", "SESSIONS", "LOSS", "MAC", "NOTE");
  for (const auto& m : s["members"]) {
    std::string note;
    if (!m["reachable"].get<bool>()) {
      note = "no status socket here";
    } else if (!m["in_cluster"].get<bool>()) {
      note = "not in the master's list";
    }
    fmt::print("{:<16} {:<9} {:>8} {:>8} {:>8} {:>9}  {:<17}  {}\n", cell(m["address"]),
               cell(m["role"]), cell(m["worksets"]), cell(m["serving"]), cell(m["sessions"]),
               cell(m["loss_estimate"]), cell(m["mac"]), note);
  }
  bool header = false;
  for (const auto& m : s["members"]) {
    if (!m["drops"].is_object()) {
      continue;
    }
    std::string line;
    for (const auto& [reason, count] : m["drops"].items()) {
      if (count.get<std::uint64_t>() != 0) {
        line += fmt::format(" {}={}", reason, count.get<std::uint64_t>());
      }
    }
    if (!line.empty()) {
      if (!header) {
        fmt::print("\ndrops by reason:\n");
        header = true;
      }
      fmt::print("  {:<16}{}\n", cell(m["address"]), line);
    }
  }
  header = false;
  for (const auto& m : s["members"]) {
    if (!m.contains("events") || !m["events"].is_object()) {
      continue;
    }
    std::string line;
    for (const auto& [name, count] : m["events"].items()) {
      if (count.is_number_unsigned() && count.get<std::uint64_t>() != 0) {
        line += fmt::format(" {}={}", name, count.get<std::uint64_t>());
      }
    }
    if (!line.empty()) {
      if (!header) {
        fmt::print("\nARP conflicts and pauses:\n");
        header = true;
      }
      fmt::print("  {:<16}{}\n", cell(m["address"]), line);
    }
  }
  for (const auto& [sock, err] : s["errors"].items()) {
    fmt::print("\n{}: {}\n", sock, err.get<std::string>());
  }
}

int drain(const std::string& socket, double timeout_s) {
  const Answer first = ask(socket);
  if (!first.status || !first.status->contains("pid")) {
    fmt::print(stderr, "phalanxctl: {}: {}\n", socket,
               first.status ? "no pid in the status document (an older phalanxd?)" : first.error);
    return 1;
  }
  const json& s = *first.status;
  const auto pid = s["pid"].get<std::int64_t>();
  fmt::print("draining {} ({}, pid {}): {} worksets, {} sessions\n", s.value("member", "?"),
             s.value("role", "?"), pid, s["owned"].size(), s.value("sessions", 0));
  if (::kill(static_cast<pid_t>(pid), SIGTERM) != 0) {
    fmt::print(stderr, "phalanxctl: kill({}, SIGTERM): {}\n", pid, std::strerror(errno));
    return 1;
  }
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  std::size_t shown = s["owned"].size() + 1;
  while (elapsed() < timeout_s) {
    const Answer a = ask(socket);
    if (!a.status) {
      fmt::print("{} drained and exited after {:.0f} ms\n", s.value("member", "?"),
                 elapsed() * 1000);
      return 0;
    }
    const std::size_t owned = (*a.status)["owned"].size();
    if (owned != shown) {
      fmt::print("  {:.0f} ms: {} worksets, {} sessions\n", elapsed() * 1000, owned,
                 a.status->value("sessions", 0));
      shown = owned;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  fmt::print(stderr, "phalanxctl: {} still answers after {:.0f} s\n", s.value("member", "?"),
             timeout_s);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"phalanxctl: operate a Phalanx cluster"};
  app.require_subcommand(1);
  CLI::App* status = app.add_subcommand("status", "members, master, worksets, sessions, drops");
  std::vector<std::string> sockets;
  std::string dir = "/run/phalanx";
  std::string cluster;
  bool as_json = false;
  status->add_option("-s,--socket", sockets, "a member's status socket (repeatable)");
  status->add_option("--dir", dir, "where to look for sockets when --socket is not given");
  status->add_option("--cluster", cluster, "only sockets of this cluster (NAME-*.sock)");
  status->add_flag("--json", as_json, "print the merged view as JSON");
  CLI::App* drain_cmd = app.add_subcommand(
      "drain",
      "stop one member without losing a connection: its worksets and sessions move "
      "to the others, then it exits");
  std::string drain_socket;
  double timeout_s = 15;
  drain_cmd->add_option("-s,--socket", drain_socket, "the member's status socket");
  drain_cmd->add_option("--dir", dir, "where to look for the socket when --socket is not given");
  drain_cmd->add_option("--cluster", cluster, "only sockets of this cluster (NAME-*.sock)");
  drain_cmd->add_option("--timeout-s", timeout_s, "give up waiting after this long (15)");
  CLI11_PARSE(app, argc, argv);

  if (drain_cmd->parsed()) {
    if (drain_socket.empty()) {
      const auto found = find_sockets(dir, cluster);
      if (found.size() != 1) {
        fmt::print(stderr, "phalanxctl: {} status sockets in {}; name one with --socket\n",
                   found.size(), dir);
        return 2;
      }
      drain_socket = found.front();
    }
    return drain(drain_socket, timeout_s);
  }

  if (sockets.empty()) {
    sockets = find_sockets(dir, cluster);
    if (sockets.empty()) {
      fmt::print(stderr, "phalanxctl: no status sockets in {}\n", dir);
      return 1;
    }
  }
  std::vector<Answer> answers;
  for (const auto& s : sockets) {
    answers.push_back(ask(s));
  }
  const json merged = merge(answers);
  if (as_json) {
    fmt::print("{}\n", merged.dump(2));
  } else {
    print_human(merged);
  }
  const bool any = std::any_of(answers.begin(), answers.end(),
                               [](const Answer& a) { return a.status.has_value(); });
  return any ? 0 : 1;
}
