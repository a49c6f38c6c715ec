"""Training task ``translation`` (e.g. mr-to-ct-synth): image -> image regression, plain L1 or adversarial.

Cases (ai.training.brain_pair_cases) hold ``images`` [input, reference image of the output modality] and
``labels`` the region to measure (the head). The target is the reference in the network's output units, as the
card's ``output`` de-normalises them (ai.translation: value = output x scale + offset, so target = (value -
offset) / scale). Modes:

- no ``adversarial`` section: L1 regression;
- ``adversarial: {mode: pix2pix}`` (paired data): L1 + ``weight`` x least-squares PatchGAN on (input, output)
  (Isola et al. 2017);
- ``adversarial: {mode: cyclegan}`` (unpaired data): the network (input -> output modality) and a companion
  backward generator (same architecture, never shipped), one PatchGAN critic per modality; ``weight`` x
  adversarial + ``cycle_weight`` x cycle L1 + ``identity_weight`` x identity L1 (Zhu et al. 2017). The batch's
  reference patches are the unpaired images (cases made with ``ct_slices``).

Validation (``evaluate``): ``mae_hu`` (in the output units) of ai.translation.run_translation's output against
the reference inside the region, end to end on each case's own grid, pooled over all region voxels.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812 - torch's own convention

from ai.model import LoadedModel, ModelCard
from ai.training.adversarial import PatchCritic, check_adversarial, least_squares
from ai.training.brain_pair_cases import AIR_HU
from ai.training.cases import Case
from ai.training.tasks import Sample, class_centres, describe_cases
from viewer.core.errors import ConfigError


class TranslationTask:
    """Image-to-image translation (see the module docstring)."""

    target_modes = {"target": "bilinear", "region": "nearest"}

    def __init__(self, config):
        from ai.translation import output_spec

        self.output = output_spec(config.model_card())
        self.spec = config.adversarial
        self.adversarial = self.spec is not None
        if self.adversarial:
            check_adversarial(config, ("pix2pix", "cyclegan"))
            if self.spec.critic != "patchgan":
                raise ConfigError(f"adversarial.critic {self.spec.critic!r}: translation trains a patchgan critic",
                                  config.path)
        self.network = config.network
        self.rng = np.random.default_rng(config.seed)
        self.critic = self.backward = None
        self.units = self.output["units"]

    # ------------------------------------------------------------------ Task protocol
    def prepare(self, case: Case, card: ModelCard) -> Sample:
        """The input on the model grid, the reference as network output values (linear resampling) and the
        region (nearest); patches are centred in the region with the config's foreground fraction."""
        from ai.engine import onto_model_grid, preprocess

        if len(case.images) < 2 or case.labels is None:
            raise ConfigError(f"case {case.name} needs an input image, a reference image and a region: a "
                              "translation case (e.g. kind brain_mr_ct)", case.source)
        image, grid = preprocess(LoadedModel(card, None), case.images[:1])
        reference = onto_model_grid(case.images[1], grid, default=AIR_HU).array.astype(np.float32)
        target = (reference - float(self.output.get("offset", 0.0))) / float(self.output.get("scale", 1.0))
        region = onto_model_grid(case.labels, grid, nearest=True).array.astype(np.uint8)
        return Sample(case.name, image, {"target": target.astype(np.float32), "region": region},
                      class_centres(region, self.rng))

    def loss(self, outputs, targets: dict):
        """L1 between the network's output and the target patch."""
        return F.l1_loss(outputs.float(), targets["target"])

    def evaluate(self, model: LoadedModel, cases: list[Case], *, device="cpu") -> list[dict]:
        """``mae_hu``: mean absolute error (output units) of the translated input against the reference, over
        the region's voxels of every case (see the module docstring)."""
        from ai.translation import run_translation
        from viewer.core.resample import resample_to

        total, count = 0.0, 0
        for case in cases:
            made = run_translation(model, case.images[:1], device=device).volume
            reference = resample_to(case.images[1], made, default=AIR_HU).array.astype(np.float32)
            region = resample_to(case.labels, made, nearest=True).array > 0
            total += float(np.abs(made.array.astype(np.float32)[region] - reference[region]).sum())
            count += int(region.sum())
        data = (f"{describe_cases(cases)}; error of ai.translation.run_translation's output against the "
                f"reference image inside each case's region ({count} voxels)")
        name = "mae_hu" if self.units == "HU" else "mae"
        return [{"name": name, "value": round(total / count, 2) if count else None, "data": data}]

    # ------------------------------------------------------------------ adversarial (ai.training.adversarial)
    def build_adversaries(self):
        """pix2pix: one critic of (input, output) pairs; cyclegan: a critic per modality and the backward
        generator (the config's network, input and output swapped: one channel each)."""
        from ai.formats.builtin import build_network

        channels = self.spec.critic_channels
        if self.spec.mode == "pix2pix":
            self.critic = PatchCritic(2, channels)
            return self.critic, None
        self.critic = torch.nn.ModuleDict({"output": PatchCritic(1, channels), "input": PatchCritic(1, channels)})
        self.backward = build_network(self.network)
        return self.critic, self.backward

    def generate(self, net, batch: dict) -> dict:
        """The generated images: pix2pix {"output"}; cyclegan also the backward image, both cycles' and both
        identity images."""
        source, target = batch["image"], batch["target"]
        fake = net(source)
        if self.spec.mode == "pix2pix":
            return {"output": fake}
        back = self.backward(target)
        return {"output": fake, "input": back, "cycle_input": self.backward(fake), "cycle_output": net(back),
                "same_output": net(target), "same_input": self.backward(source)}

    def critic_loss(self, batch: dict, fakes: dict) -> torch.Tensor:
        source, target = batch["image"], batch["target"]
        if self.spec.mode == "pix2pix":
            return 0.5 * (least_squares(self.critic(torch.cat([source, target], 1)), True)
                          + least_squares(self.critic(torch.cat([source, fakes["output"]], 1)), False))
        real = {"output": target, "input": source}
        return sum(0.5 * (least_squares(self.critic[k](real[k]), True)
                          + least_squares(self.critic[k](fakes[k]), False)) for k in real)

    def generator_loss(self, batch: dict, fakes: dict) -> torch.Tensor:
        source, target = batch["image"], batch["target"]
        if self.spec.mode == "pix2pix":
            judged = self.critic(torch.cat([source, fakes["output"]], 1))
            return self.loss(fakes["output"], batch) + self.spec.weight * least_squares(judged, True)
        adversarial = sum(least_squares(self.critic[k](fakes[k]), True) for k in ("output", "input"))
        cycle = F.l1_loss(fakes["cycle_input"].float(), source) + F.l1_loss(fakes["cycle_output"].float(), target)
        identity = F.l1_loss(fakes["same_output"].float(), target) + F.l1_loss(fakes["same_input"].float(), source)
        return self.spec.weight * adversarial + self.spec.cycle_weight * cycle + self.spec.identity_weight * identity
