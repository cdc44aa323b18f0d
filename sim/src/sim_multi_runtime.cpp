#include "dpdk_net/sim/sim_multi_runtime.hpp"

#include <stdexcept>
#include <string>

namespace dpdk_net::sim {

class sim_multi_runtime::worker_host final : public sim_runtime {
 public:
  worker_host(host& h, sim_nic& nic, stack::stack_config config, stack_host_options options,
              worker_mesh& mesh, std::uint16_t self)
      : sim_runtime(h, nic, std::move(config), options), mesh_(&mesh), self_(self) {
    mesh.attach(self, ip());
    mesh.set_wake(self, &sim_runtime::wake, static_cast<sim_runtime*>(this));
  }
  ~worker_host() override { mesh_->set_wake(self_, nullptr, nullptr); }
  using stack_host::restart_after_crash;

 protected:
  void receive_frame(packet frame, time_ns now) override {
    mesh_->receive(self_, ip(), std::move(frame), now, nic().tx_pool(queue()));
  }
  void on_pump(time_ns now) override {
    (void)mesh_->drain(self_, ip(), nic().tx_pool(queue()), now);
    sim_runtime::on_pump(now);
    mesh_->flush(self_);
  }
  void on_restart() override {
    mesh_->discard(self_);
    mesh_->attach(self_, ip());
    sim_runtime::on_restart();
  }
  [[nodiscard]] time_ns app_deadline(time_ns now) const noexcept override {
    // Originals handed back to us wait to be freed: a pump at once.
    return mesh_->idle(self_) ? sim_runtime::app_deadline(now) : now;
  }

 private:
  worker_mesh* mesh_;
  std::uint16_t self_;
};

sim_multi_runtime::sim_multi_runtime(host& h, sim_nic& nic, stack::stack_config config,
                                     sim_multi_options options)
    : host_(&h) {
  const std::uint16_t n = options.workers;
  if (n == 0 || n > nic.info().rx_queues) {
    throw std::invalid_argument("sim_multi_runtime: " + std::to_string(n) + " workers on " +
                                nic.name() + ", which has " + std::to_string(nic.info().rx_queues) +
                                " queues (nic_config.queues)");
  }
  if (config.mac == mac_address{}) {
    config.mac = nic.info().mac;
  }
  flows_ = std::make_unique<flow_steering>(
      steering_for(nic, n, options.force_software_rss, config.address));
  mesh_ = std::make_unique<worker_mesh>(*flows_, options.handoff_ring);
  const std::uint32_t ids = 65536U / n;
  for (std::uint16_t k = 0; k < n; ++k) {
    stack::stack_config c = config;
    c.ip_id_first = static_cast<std::uint16_t>(k * ids);
    c.ip_id_count = ids;
    stack_host_options o;
    o.queue = k;
    o.announce = options.announce && k == 0;
    workers_.push_back(std::make_unique<worker_host>(h, nic, std::move(c), o, *mesh_, k));
  }
  // One host, several stacks: frames arriving pump every worker (each drains its own queue); a
  // restart rebuilds each.
  h.on_receive = [this](host&) {
    for (auto& w : workers_) {
      w->pump();
    }
  };
  h.on_restart = [this](host&) {
    // The crash took every worker's stack, and with them every bound port (their destructors
    // do not report ports released).
    flows_->clear_ports();
    for (auto& w : workers_) {
      w->restart_after_crash();
    }
  };
}

sim_runtime& sim_multi_runtime::worker(std::size_t i) {
  return *workers_.at(i);
}

sim_multi_runtime::~sim_multi_runtime() {
  host_->on_receive = nullptr;
  host_->on_restart = nullptr;
  workers_.clear();
}

}  // namespace dpdk_net::sim
