"""The paper's trainable baselines: a spiking RNN trained end to end by backpropagation through
time (snntorch), as a classifier and as a contrastive (CLIP-style) encoder pair. Their training
time is recorded so the LSM's training-cost advantage is measured, not quoted."""
