"""What serving a trained method costs (docs/protocol.md, "Result rows"): the bytes of what it keeps to encode
new items, and the time to encode them, measured after the test on the run's own first query batch."""

import time

import torch

BATCH = 256  # items of the throughput measurement (fewer when the query batch is smaller)


def kept_state(method) -> dict[str, torch.Tensor]:
    """The state a saved run keeps to encode: every tensor of the method but its `training_only` ones."""
    return {k: v for k, v in method.state_dict().items() if k.split(".", 1)[0] not in method.training_only}


def serving_cost(method, batch: dict, repeats: int = 5) -> dict:
    """Encoding cost on this machine, each time the best of up to `repeats` (benchmarks.execution.serving.best).

    Args:
        method: a trained method.
        batch: a query batch ({"image": ..., "text": ...}: features, or raw items where the method reads them).
        repeats: timings per measurement.

    Returns:
        {"weights_bytes": bytes of kept_state, "ms_per_item": {modality: ms to encode one item alone},
        "items_per_second": {modality: items encoded per second in batches of up to BATCH}}.
    """
    encoders = {"image": method.encode_image, "text": method.encode_text}
    device = next((t.device for t in method.state_dict().values()), torch.device("cpu"))
    was_training = method.training
    method.eval()
    ms, rate = {}, {}
    with torch.inference_mode():
        for modality, encode in encoders.items():
            items = batch[modality][:BATCH].to(device)
            ms[modality] = best(lambda: encode(items[:1]), repeats) * 1e3
            rate[modality] = len(items) / best(lambda: encode(items), repeats)
    method.train(was_training)
    return {"weights_bytes": sum(t.numel() * t.element_size() for t in kept_state(method).values()),
            "ms_per_item": ms, "items_per_second": rate}


def best(call, repeats: int, budget: float = 2.0) -> float:
    """The shortest of up to `repeats` timed calls after a first one that warms up, in seconds; calls stop once
    `budget` seconds are spent (a backbone on raw images at batch 256 takes seconds a call on a CPU)."""
    times, begin = [], time.perf_counter()
    for _ in range(repeats + 1):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
        if time.perf_counter() - begin > budget:
            break
    return min(times[1:] or times)
