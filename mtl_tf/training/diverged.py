"""The error raised when a task loss stops being finite."""


class TrainingDiverged(ValueError):
    """A task loss became NaN or infinite; training stopped and no checkpoint was written after it.

    Attributes:
        tasks: the tasks whose loss was not finite.
        epoch: the 1-based epoch.
        step: the 1-based step within that epoch.
        checkpoint: the path of the last checkpoint kept, or None when none was written.
    """

    def __init__(self, tasks: list[str], epoch: int, step: int, checkpoint: str | None):
        self.tasks, self.epoch, self.step, self.checkpoint = tasks, epoch, step, checkpoint
        kept = (f"the last checkpoint was kept: {checkpoint}" if checkpoint
                else "no checkpoint had been written")
        super().__init__(
            f"training diverged: the loss of task(s) {', '.join(tasks)} became NaN or infinite at "
            f"epoch {epoch}, step {step}; {kept}. Lower the learning rate, check the labels of "
            "these tasks for infinite values, or add gradient clipping (optimizer clipnorm).")
