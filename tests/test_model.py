from captchalab.model import CONV_LAYERS, PARAMETER_COUNT, build_model, missing_layers


def test_architecture_matches_the_seed():
    model = build_model(seed=0)
    assert model.count_params() == PARAMETER_COUNT == 628_750
    sizes = [model.get_layer(n).output.shape[1:] for n in CONV_LAYERS]
    assert sizes == [(24, 24, 20), (20, 20, 20), (16, 16, 50), (12, 12, 50), (8, 8, 50), (4, 4, 50)]
    assert model.get_layer("fc1").output.shape[1:] == (500,)
    assert model.get_layer("fc2").output.shape[1:] == (10,)
    assert not any("pool" in layer.name for layer in model.layers)
    assert missing_layers(model) == []


def test_last_layer_follows_the_character_set():
    for classes in (10, 26, 36, 62):
        model = build_model(classes, seed=0)
        assert model.get_layer("fc2").output.shape[1:] == (classes,)
        assert model.count_params() == PARAMETER_COUNT + 501 * (classes - 10)
        assert missing_layers(model) == []
        assert missing_layers(model, 10) == (
            [] if classes == 10 else [f"fc2 (shape [(500, {classes}), ({classes},)], expected [(500, 10), (10,)])"]
        )
