"""speechssl: self-supervised speech representation learning."""
