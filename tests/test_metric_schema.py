"""The metric schema: every logged value declared once, read by the step, TensorBoard, best.json,
the printed lines, the curves and the report."""

from tfgan_cifar import metric_schema
from tfgan_cifar.config import TrainConfig


def test_step_metrics_follow_the_studies_a_config_enables():
    base = ("g_loss", "d_loss", "d_real_acc", "d_fake_acc")
    assert metric_schema.step_metric_names(TrainConfig(model="dcgan").resolved()) == base
    config = TrainConfig(model="dcgan", class_head=True, gp_weight=10.0,
                         replay_size=256, loss="wasserstein").resolved()
    assert metric_schema.step_metric_names(config) == base + ("cls_loss", "cls_acc", "gp",
                                                              "replayed")
    assert [m.key for m in metric_schema.study_step_metrics()] == ["cls_loss", "cls_acc", "gp",
                                                                   "replayed"]


def test_tensorboard_tags_of_training_and_evaluation_records():
    train = {"g_loss": 1.0, "d_loss": 2.0, "d_real_acc": 0.5, "d_fake_acc": 0.25, "lr_g": 1e-4,
             "lr_d": 2e-4, "steps_per_sec": 3.0, "gp": 0.1,
             "gamma/generator/attention16": 0.01}
    assert metric_schema.tensorboard_scalars(train) == {
        "loss/generator": 1.0, "loss/discriminator": 2.0, "accuracy/d_real": 0.5,
        "accuracy/d_fake": 0.25, "learning_rate/generator": 1e-4,
        "learning_rate/discriminator": 2e-4, "speed/steps_per_sec": 3.0,
        "loss/gradient_penalty": 0.1, "gamma/generator/attention16": 0.01}
    result = {"fid": 30.0, "kid": 0.02, "kid_std": 0.001, "num_samples": 10, "reference": "x",
              "precision": 0.5, "fd_classifier": 4.0, "class_acc_per_class": [0.5, 0.75],
              "class_distribution": [0.5, 0.5], "cls_test_acc": 0.9, "seconds": 3.0,
              "recall_clf": None}
    assert metric_schema.tensorboard_scalars(result) == {
        "eval/fid": 30.0, "eval/kid": 0.02, "eval/precision": 0.5,
        "quality/fd_classifier": 4.0, "quality/class_acc/0": 0.5, "quality/class_acc/1": 0.75,
        "eval/cls_test_acc": 0.9}


def test_best_json_keeps_the_scores_and_their_protocol():
    result = {"fid": 30.0, "kid": 0.02, "kid_std": 0.001, "num_samples": 10, "reference": "x",
              "reference_samples": 10, "precision": 0.5, "fd_classifier": 4.0,
              "class_acc": 0.5, "class_kl": 0.1, "classifier_samples": 10, "seconds": 3.0,
              "class_distribution": [1.0]}
    assert set(metric_schema.exported_fields(result)) == {
        "fid", "kid", "kid_std", "num_samples", "reference", "fd_classifier", "class_acc",
        "class_kl", "classifier_samples"}
    for metric in metric_schema.METRICS:  # a protocol names declared fields
        assert all(key in metric_schema.BY_KEY for key in metric.protocol)


def test_best_model_metric_prefers_fid():
    assert metric_schema.best_model_metric({"fd_classifier": 1, "fid": 2}) == "fid"
    assert metric_schema.best_model_metric(["fd_classifier"]) == "fd_classifier"
    assert metric_schema.best_model_metric({}) is None
    assert all(metric_schema.BY_KEY[key].lower_is_better for key in metric_schema.BEST_MODEL_BY)


def test_printed_lines():
    result = {"fid": 0.0000213, "kid": 0.0123, "kid_std": 0.0011, "num_samples": 6,
              "reference": "folder:/data/test", "reference_samples": 8}
    assert metric_schema.fid_line(result, "generated images") == (
        "FID (Keras InceptionV3) 2.13e-05, KID 0.0123 ± 0.0011 (6 generated images vs 8 images "
        "of folder:/data/test)")
    standard = {**result, "fid": 12.345, "fid_network": "standard", "reference_split": "train"}
    assert metric_schema.fid_line(standard).startswith("FID 12.35, KID")
    quality = {"fd_classifier": 3.14159, "class_kl": 0.25, "classifier_samples": 6,
               "class_acc": 0.5}
    assert metric_schema.quality_line(quality) == (
        "FD_classifier 3.14, class accuracy 0.500, class KL 0.250 (6 samples, reference "
        "classifier)")
    assert metric_schema.format_fid(12.345) == "12.35"
    assert metric_schema.format_fid(-1.5, sign=True) == "-1.50"


def test_figure_panels_come_from_the_declarations():
    assert metric_schema.figure_panels("classifier") == [
        ("classifier loss", [("cls_train_loss", "training images"),
                             ("cls_test_loss", "test split")]),
        ("classifier accuracy", [("cls_train_acc", "training images"),
                                 ("cls_test_acc", "test split")])]
    assert [panel for panel, _ in metric_schema.figure_panels("quality")] == [
        "FD_classifier", "class accuracy", "KL(classes || uniform)", "PRDC (Inception)",
        "PRDC (classifier)"]
    assert metric_schema.lookup("gamma/discriminator/attention8").key == "gamma/"
    assert metric_schema.lookup("kind") is None


def test_every_fid_keeps_its_protocol_in_best_json():
    result = {"fid": 12.3, "kid": 0.01, "kid_std": 0.001, "num_samples": 50000,
              "fid_network": "standard", "reference": "folder:/data/train",
              "reference_split": "train", "reference_samples": 50000, "selected_by": "fid"}
    kept = metric_schema.exported_fields(result)
    for field in metric_schema.BY_KEY["fid"].protocol:
        if field != "reference_samples":
            assert kept[field] == result[field], field
    assert set(metric_schema.BY_KEY["fid"].protocol) >= {"fid_network", "reference_split",
                                                          "num_samples"}
