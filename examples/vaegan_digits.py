"""VAE-GAN on the embedded digits, from Python: three networks, three optimizers, one updater.

The same run from the command line: gankit train --recipe vaegan --data digits
Run: python examples/vaegan_digits.py [--epochs N | --iterations N] [--out DIR]
"""

import argparse

import torch

import gankit
from gankit.data import load_dataset, make_loader
from gankit.extensions import LogReport, PrintReport, Snapshot
from gankit.extensions.sample_grid import SampleGrid, fixed_noise_samples
from gankit.gan.vaegan import ConvEncoder, ReconstructionEvaluator, VAEGANUpdater
from gankit.models import DCGANDiscriminator, DCGANGenerator


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--out", default="runs/vaegan_digits")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    train, val = load_dataset("digits", "train"), load_dataset("digits", "val")
    enc = ConvEncoder(z_dim=32, shape=train.shape, base=32)
    dec = DCGANGenerator(z_dim=32, shape=train.shape, base=32)  # the decoder is the generator
    dis = DCGANDiscriminator(train.shape, base=32, norm="layer")
    adam = dict(lr=2e-4, betas=(0.5, 0.999))
    updater = VAEGANUpdater(
        enc, dec, dis,
        *(torch.optim.Adam(m.parameters(), **adam) for m in (enc, dec, dis)),
        make_loader(train, 64),
        gamma=1e-2,  # weight of the feature-space reconstruction error in the decoder loss
    )
    stop = (args.iterations, "iteration") if args.iterations else (args.epochs, "epoch")
    trainer = gankit.Trainer(updater, stop, out=args.out)
    # Held-out pixel MSE of dec(mu(x)), reported as val/rec after each epoch.
    trainer.extend(ReconstructionEvaluator(make_loader(val, 300, shuffle=False)))
    trainer.extend(LogReport())
    trainer.extend(PrintReport(["epoch", "enc/kl", "enc/llike", "dis/loss", "val/rec"]))
    trainer.extend(SampleGrid(fixed_noise_samples(100, source="dec"), nrow=10),
                   trigger=(20, "epoch"))
    trainer.extend(Snapshot(), trigger=(20, "epoch"))  # resume with trainer.resume(args.out)
    trainer.run()
    return trainer


if __name__ == "__main__":
    main()
