#include "runtime/node_factory.hpp"

#include "apps/file_source_posix.hpp"
#include "runtime/logging.hpp"

namespace phalanx::runtime {

Result<std::unique_ptr<apps::FileSource>> open_http_root(const Config& config) {
  if (!config.http.enabled) {
    return std::unique_ptr<apps::FileSource>();
  }
  std::unique_ptr<apps::FileSource> files = apps::PosixFileSource::open_root(config.http.root);
  if (!files) {
    return errno_error("http root " + config.http.root);
  }
  return files;
}

Result<std::unique_ptr<Standalone>> make_standalone(const Config& config,
                                                    const StandaloneEnvironment& env) {
  auto files = open_http_root(config);
  if (!files) {
    return files.error();
  }
  return Standalone::create(config, env, std::move(*files));
}

Result<std::unique_ptr<ClusterNode>> make_cluster_node(const Config& config, ClusterEnvironment env,
                                                       ClusterNode::ControlSink control) {
  auto files = open_http_root(config);
  if (!files) {
    return files.error();
  }
  if (!env.log) {
    env.log = log_hook();
  }
  return ClusterNode::create(config, env, std::move(control), std::move(*files));
}

}  // namespace phalanx::runtime
