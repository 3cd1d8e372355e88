// The nodes phalanxd runs, built from a loaded config: the driver does what a pure node may not
// (opens the HTTP root, logs through spdlog) and hands the results in (node/apps.hpp,
// node/log.hpp).
#pragma once

#include <memory>

#include "apps/file_source.hpp"
#include "node/cluster_node.hpp"
#include "node/log.hpp"
#include "node/standalone.hpp"
#include "runtime/config.hpp"
#include "runtime/error.hpp"

namespace phalanx::runtime {

using node::ClusterEnvironment;
using node::ClusterNode;
using node::Standalone;
using node::StandaloneEnvironment;

// The files http serves: config.http.root opened (nullptr when http is off). Fails, with
// errno's reason, when the root cannot be opened.
Result<std::unique_ptr<apps::FileSource>> open_http_root(const Config& config);

// A stand-alone member. Fails when the HTTP root cannot be opened or a port cannot be bound.
Result<std::unique_ptr<Standalone>> make_standalone(const Config& config,
                                                    const StandaloneEnvironment& env);

// A cluster member, logging through spdlog unless `env.log` is set. Fails as make_standalone
// does. `config.cluster` must be set.
Result<std::unique_ptr<ClusterNode>> make_cluster_node(const Config& config, ClusterEnvironment env,
                                                       ClusterNode::ControlSink control);

}  // namespace phalanx::runtime
