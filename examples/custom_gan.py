"""A new GAN method as one update_core: the relativistic average GAN (Jolicoeur-Martineau 2018)
on the 8-Gaussian ring: D asks whether real points look *more* real than the average fake."""

import argparse

import torch
import torch.nn.functional as F

import gankit
from gankit.data import load_dataset, make_loader
from gankit.extensions import LogReport
from gankit.extensions.sample_grid import SampleGrid, fixed_noise_samples
from gankit.gan.penalties import r1_penalty
from gankit.gan.sampling import generate
from gankit.metrics.modes import mode_coverage
from gankit.models import MLPDiscriminator, MLPGenerator


def relativistic(a, b):  # -log sigmoid(a - mean(b)): "a looks more real than the average b"
    return F.softplus(-(a - b.mean())).mean()


class RaGANUpdater(gankit.Updater):
    def update_core(self, batch):
        x, _ = batch  # points and their mode labels; the labels are not used
        gen, dis = self.models["gen"], self.models["dis"]
        z = gen.sample_z(len(x), device=self.device)
        with torch.no_grad():
            fake = gen(z)
        x.requires_grad_(True)  # for R1, which keeps D smooth around the data
        real_out, fake_out = dis(x), dis(fake)
        loss_dis = relativistic(real_out, fake_out) + relativistic(-fake_out, -real_out)
        self.step("dis", loss_dis + 0.05 * r1_penalty(real_out, x))
        dis = self.frozen("dis")  # serves G's loss, is not trained here
        real_out, fake_out = dis(x.detach()).detach(), dis(gen(z))  # G's loss needs both
        loss_gen = relativistic(fake_out, real_out) + relativistic(-real_out, -fake_out)
        self.step("gen", loss_gen)  # backward into G's parameters only
        gankit.report({"gen/loss": loss_gen, "dis/loss": loss_dis})


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--out", default="runs/custom_gan")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    train = load_dataset("ring8", "train")
    gen, dis = MLPGenerator(z_dim=2, hidden=128), MLPDiscriminator(hidden=128)
    opts = {k: torch.optim.Adam(m.parameters(), 1e-3, betas=(0.5, 0.999))
            for k, m in (("gen", gen), ("dis", dis))}
    updater = RaGANUpdater({"gen": gen, "dis": dis}, opts, make_loader(train, 256))
    trainer = gankit.Trainer(updater, (args.iterations, "iteration"), out=args.out)
    trainer.extend(LogReport(trigger=(500, "iteration")))
    trainer.extend(SampleGrid(fixed_noise_samples(2500), real=train.x[:2500]),
                   trigger=(500, "iteration"))
    trainer.run()
    return mode_coverage(generate(gen, 2500, seed=1), train.modes, train.sigma)


if __name__ == "__main__":
    print(main())
