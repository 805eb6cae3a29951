"""Exercise early_stopping: stop where the validation loss stopped improving.

The lecture's first remedy for overfitting: measure the validation loss
after every epoch, keep the weights of the epoch where it was LOWEST, and
stop once it has not improved for `patience` epochs in a row:

    best(e) = the epoch <= e with the lowest loss (the earliest one on a tie:
              an equal loss is no improvement)
    stop after the first epoch e with e - best(e) >= patience

Epochs count from 1. If that never happens, training runs to the end.

Check your file with:  minicnn exercise check early_stopping
"""


def early_stopping(val_losses, patience):
    """(best, stop): the epoch whose weights are kept, and the epoch after
    which training stops; val_losses[e - 1] is the loss after epoch e.

    >>> early_stopping([0.9, 0.7, 0.8, 0.75, 0.72, 0.6], 3)
    (2, 5)
    >>> early_stopping([0.9, 0.7, 0.6], 2)
    (3, 3)
    """
    # BEGIN SOLUTION
    best, best_loss = 0, float("inf")
    for epoch, loss in enumerate(val_losses, start=1):
        if loss < best_loss:
            best, best_loss = epoch, loss
        elif epoch - best >= patience:
            return best, epoch
    return best, len(val_losses)
    # END SOLUTION
