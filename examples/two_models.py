"""Two networks that are not a GAN: a teacher learns a function, a student learns the teacher.

Run: python examples/two_models.py [--iterations N] [--out DIR]
"""

import argparse

import torch
from torch import nn

import gankit
from gankit.extensions import LogReport, PrintReport


class DistillUpdater(gankit.Updater):
    def update_core(self, batch):
        x, y = batch
        teacher, student = self.models["teacher"], self.models["student"]
        loss_teacher = nn.functional.mse_loss(teacher(x), y)
        self.step("teacher", loss_teacher)
        with torch.no_grad():
            target = teacher(x)  # the student sees only the teacher, never the labels
        loss_student = nn.functional.mse_loss(student(x), target)
        self.step("student", loss_student)
        gankit.report({"loss": loss_teacher}, teacher)
        gankit.report({"loss": loss_student}, student)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--out", default="runs/two_models")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    x = torch.rand(2048, 4) * 4 - 2
    y = torch.sin(x).sum(1, keepdim=True)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64,
                                         shuffle=True, drop_last=True)
    teacher = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 1))
    student = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
    updater = DistillUpdater(
        models={"teacher": teacher, "student": student},
        optimizers={"teacher": torch.optim.Adam(teacher.parameters(), 3e-3),
                    "student": torch.optim.Adam(student.parameters(), 3e-3)},
        loaders=loader,
    )
    trainer = gankit.Trainer(updater, (args.iterations, "iteration"), out=args.out)
    trainer.extend(LogReport(trigger=(100, "iteration")))
    trainer.extend(PrintReport(["iteration", "teacher/loss", "student/loss"]))
    trainer.run()
    return trainer.get_extension("LogReport").log


if __name__ == "__main__":
    main()
