"""Lightning modules and data modules: pretraining, distillation, fine-tuning."""
