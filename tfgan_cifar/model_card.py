"""The model card of an export: a short README.md on what the generator is, how it scored
and how to load it, written from the export's record (best.json)."""

# The metrics a record may hold, with what each one measures.
METRICS = (
    ("fid", "FID (Inception features; lower is better)"),
    ("kid", "KID (Inception features; lower is better)"),
    ("fd_classifier", "Fréchet distance in the reference classifier's features"),
    ("class_acc", "share of samples the reference classifier puts in their class"),
    ("class_kl", "KL of the classifier's class histogram from uniform"),
)


def _number(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _metrics(info):
    rows = [f"| {key} | {_number(info[key])} | {meaning} |" for key, meaning in METRICS
            if info.get(key) is not None]
    if not rows:
        return ["This generator was exported without an evaluation (no metric was computed)."]
    protocol = []
    if info.get("num_samples") is not None:
        network = info.get("network", "keras.applications InceptionV3 (ImageNet weights)")
        protocol.append(f"FID and KID: {info['num_samples']} generated images against "
                        f"{info.get('reference', 'the reference images')}, in the features of "
                        f"{network}. Papers' FID uses other features, 50k samples and the "
                        "training images: compare only numbers measured the same way.")
    if info.get("classifier_samples") is not None:
        protocol.append(f"Classifier metrics: {info['classifier_samples']} generated images.")
    return ["| metric | value | meaning |", "| --- | --- | --- |", *rows, "", *protocol]


def model_card(info):
    """The README.md text of an export whose record is `info`."""
    config = info.get("config", {})
    model = config.get("model", "?")
    kind = "conditional" if config.get("conditional") else "unconditional"
    network = model.upper() + (f" ({config['arch']})" if config.get("arch") else "")
    which = ("the generator after the last step" if info.get("final")
             else f"the best generator by {info.get('selected_by', 'FID')}")
    ema = (f", EMA weights (decay {config['ema_decay']})" if config.get("ema_decay") else "")
    classes = (f" and a class label (0..{config.get('num_classes', 10) - 1})"
               if config.get("conditional") else "")
    lines = [
        f"# {network} generator, step {info.get('step')}",
        "",
        f"A {kind} {network} trained by tfgan_cifar: {which}, at step {info.get('step')} of "
        f"{config.get('steps', '?')}{ema}. It maps noise z ~ N(0, I) of dimension "
        f"{config.get('z_dim')}{classes} to 32x32 RGB images.",
        "",
        "## Metrics",
        "",
        *_metrics(info),
        "",
        "## Loading it",
        "",
        "```python",
        "import tfgan_cifar",
        "",
        "generator = tfgan_cifar.load_generator(\"THIS_FOLDER\")",
        "images = generator.sample(16, seed=0)  # uint8 [16, 32, 32, 3]",
        "```",
        "",
        "or `tfgan-sample THIS_FOLDER --num=64 --out=grid.png`. Without this package, "
        "`tf.saved_model.load(\"THIS_FOLDER/saved_model\")` has the signatures `serving_default` "
        "(z, labels -> images in [-1, 1]) and `sample` (uint8 images; labels only for a "
        "conditional generator). `generator.keras` loads with `keras.models.load_model` once "
        "`tfgan_cifar` is imported. `best.json` holds the full record and training settings.",
        "",
    ]
    return "\n".join(lines)
