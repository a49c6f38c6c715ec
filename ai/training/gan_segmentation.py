"""Adversarial segmentation (pix2pix / SegAN style): a segmentation network trained with a critic on (image, mask).

The generator is the config's network (e.g. the MONAI UNet of ct-abdomen-organs) and the shipped model; its loss
is the config's segmentation loss plus ``adversarial.weight`` x an adversarial term. Critics
(ai.training.adversarial.PatchCritic):

- ``patchgan``: a least-squares PatchGAN judging the image stacked with a mask: the one-hot reference (real) or
  the network's softmax (generated); the generator wants its softmax judged real.
- ``multiscale_l1`` (SegAN, Xue et al. 2018): the critic sees the image masked by each class's probability
  (image x p_k for every class k) and compares its features at every level for the prediction and for the
  reference; the critic maximises that multi-scale L1 distance, the generator minimises it.

Validation, model folder and card are the segmentation task's (Dice and HD95 per label); the critic is not shipped.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F  # noqa: N812 - torch's own convention

from ai.training.adversarial import PatchCritic, check_adversarial, least_squares, multiscale_l1
from ai.training.tasks import SegmentationTask


class GANSegmentationTask(SegmentationTask):
    """SegmentationTask whose network is trained against a critic (config ``adversarial``: mode pix2pix)."""

    adversarial = True

    def __init__(self, config):
        super().__init__(config)
        check_adversarial(config, ("pix2pix",))
        self.spec = config.adversarial
        self.n_classes = max(self.labels) + 1
        self.in_channels = len(config.inputs)
        self.critic: PatchCritic | None = None

    def build_adversaries(self):
        """(the critic, no companions)."""
        c_in = (self.in_channels + self.n_classes if self.spec.critic == "patchgan"
                else self.in_channels * self.n_classes)
        self.critic = PatchCritic(c_in, self.spec.critic_channels)
        return self.critic, None

    def generate(self, net, batch: dict) -> dict:
        """{"outputs": logits, or (logits, edge logits) with an edge head}."""
        return {"outputs": self.forward(net, batch["image"])}

    def _masks(self, batch: dict, fakes: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(softmax of the generated logits, one-hot reference), (B, K, z, y, x) float32."""
        outputs = fakes["outputs"]
        logits = (outputs[0] if isinstance(outputs, tuple) else outputs).float()
        truth = F.one_hot(batch["labels"][:, 0].long(), self.n_classes).permute(0, 4, 1, 2, 3).float()
        return torch.softmax(logits, dim=1), truth

    def _judged(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """What the critic sees of ``image`` with ``mask``: stacked (patchgan) or masked per class (multiscale_l1)."""
        if self.spec.critic == "patchgan":
            return torch.cat([image, mask], dim=1)
        return (image[:, :, None] * mask[:, None]).flatten(1, 2)

    def critic_loss(self, batch: dict, fakes: dict) -> torch.Tensor:
        probs, truth = self._masks(batch, fakes)
        image = batch["image"]
        if self.spec.critic == "patchgan":
            return 0.5 * (least_squares(self.critic(self._judged(image, truth)), True)
                          + least_squares(self.critic(self._judged(image, probs)), False))
        return -multiscale_l1(self.critic, self._judged(image, probs), self._judged(image, truth))

    def generator_loss(self, batch: dict, fakes: dict) -> torch.Tensor:
        outputs = fakes["outputs"]
        outputs = tuple(o.float() for o in outputs) if isinstance(outputs, tuple) else outputs.float()
        supervised = self.loss(outputs, batch)
        probs, truth = self._masks(batch, fakes)
        image = batch["image"]
        if self.spec.critic == "patchgan":
            adversarial = least_squares(self.critic(self._judged(image, probs)), True)
        else:
            adversarial = multiscale_l1(self.critic, self._judged(image, probs), self._judged(image, truth))
        return supervised + self.spec.weight * adversarial
