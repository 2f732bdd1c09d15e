"""The task registry and the LightningModules that orchestrate the models: pretraining, distillation,
fine-tuning, TTS, ASD and SUPERB (a package of its own)."""
