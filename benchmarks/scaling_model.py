"""What data-parallel GRU4Rec training should give on more devices: a per-step cost model.

    python benchmarks/scaling_model.py

A synchronised step on R replicas, each with its own B rows (weak scaling: the global batch
grows with R), costs

    T(R) = t_step + t_sync + rows(R) * t_row + n_collectives * latency + bytes(R) / bandwidth

- t_step: one device's compiled step (what a plain run takes per step);
- t_sync: what a step under a strategy adds on one replica (the `strategy.run` call, the
  merge calls and the AdagradM update run op by op instead of inside the compiled loop);
- rows(R) = R * (2B + S): the item-table rows every replica applies after the all-gather
  (each replica sends its 2B + S rows: inputs, targets, shared negatives), t_row per row;
- n_collectives: per step, 1 all-reduce (the GRU's dense gradients) and the all-gather of
  the rows, which TensorFlow runs as 2 collectives (the shapes, then the data): 3;
- bytes(R): what one replica receives: 2 (R - 1) / R of the dense gradients (ring
  all-reduce) plus (R - 1) replicas' rows (values and indices, float32).

Throughput relative to one device = R * t_step / T(R). The CPU column's costs were measured
on this project's 2-core machine (docs/distributed-profile.md); the GPU costs are
assumptions, marked as such in the printed table, until a GPU run of
`benchmarks/gpu_check.sh` (step 3) measures t_step and t_sync.
"""

from __future__ import annotations

SHAPES = {  # name: (B per replica, S, d)
    "RSC15 (B=32, S=2048, d=100)": (32, 2048, 100),
    "RetailRocket (B=80, S=2048, d=224)": (80, 2048, 224),
}
# t_step ms per shape, t_sync ms, t_row us; measured on the CPU, assumed on GPUs.
DEVICES = {
    "GPU (assumed)": {"t_step": {"RSC15": 0.25, "RetailRocket": 0.5}, "t_sync": 0.4, "t_row": 0.02},
}
LINKS = {  # name: (latency per collective ms, bandwidth GB/s), assumed
    "NVLink (one machine)": (0.03, 150.0),
    "PCIe (one machine)": (0.05, 12.0),
    "10 Gb/s Ethernet (machines)": (0.3, 1.1),
    "100 Gb/s Ethernet (machines)": (0.1, 11.0),
}
COLLECTIVES = 3


def bytes_received(replicas: int, batch: int, n_sample: int, units: int, reduced: bool = False) -> float:
    """Bytes one replica receives per step: dense all-reduce (ring) + the other replicas' rows.
    `reduced`: the S shared negatives' rows all-reduced with the dense gradients (they are
    the same rows on every replica), only the 2B in-batch rows gathered."""
    dense = 4 * (units * 3 * units * 2 + 3 * units)  # the GRU's weights (one layer of d units)
    row = 4 * (units + 1 + 2)  # Wy and By values, 2 index columns
    if reduced:
        return 2 * (replicas - 1) / replicas * (dense + n_sample * row) + (replicas - 1) * 2 * batch * row
    return 2 * (replicas - 1) / replicas * dense + (replicas - 1) * (2 * batch + n_sample) * row


def step_ms(replicas, shape, device, link, reduced=False) -> float:
    batch, n_sample, units = SHAPES[shape]
    costs = DEVICES[device]
    t_step = costs["t_step"][shape.split(" ")[0]]
    if replicas == 1:
        return t_step
    latency, bandwidth = LINKS[link]
    rows = replicas * 2 * batch + (n_sample if reduced else replicas * n_sample)
    return (t_step + costs["t_sync"] + rows * costs["t_row"] / 1e3 + COLLECTIVES * latency
            + bytes_received(replicas, batch, n_sample, units, reduced) / (bandwidth * 1e9) * 1e3)


def main() -> int:
    print("Predicted throughput vs one device (weak scaling, R replicas of B rows each); GPU costs "
          "assumed: t_step 0.25 / 0.5 ms, t_sync 0.4 ms, 0.02 us per applied row; links as named.\n"
          "As built: every replica's 2B + S rows gathered. Negatives reduced (not built): the S "
          "shared negatives' rows all-reduced, only the 2B in-batch rows gathered.\n")
    print("| shape | link | 2 | 4 | 8 | MB received per replica per step at 8 "
          "| negatives reduced: 2 | 4 | 8 | MB at 8 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    device = "GPU (assumed)"
    for shape in SHAPES:
        for link in LINKS:
            cells = []
            for reduced in (False, True):
                cells += [f"{r * step_ms(1, shape, device, link) / step_ms(r, shape, device, link, reduced):.2f}x"
                          for r in (2, 4, 8)]
                cells.append(f"{bytes_received(8, *SHAPES[shape], reduced) / 1e6:.1f}")
            print(f"| {shape} | {link} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
