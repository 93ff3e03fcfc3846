"""Our benchmark problems' search spaces as ConfigSpace spaces, for the reference tools that
take one (the DEHB package, HpBandSter); imported only in their environment."""
import ConfigSpace as CS


def configspace(problem, seed: int) -> CS.ConfigurationSpace:
    space = CS.ConfigurationSpace(seed=seed)
    for item in problem.search:
        name = item["args"][0]
        if item["type"] == "enum":  # ConfigSpace choices are strings; `decoder` maps them back
            space.add(CS.CategoricalHyperparameter(name, [str(choice[0]) for choice in item["targets"]]))
        elif item["type"] == "int":
            low, high = item["targets"]
            space.add(CS.UniformIntegerHyperparameter(name, int(low), int(high), log=item.get("log", False)))
        else:
            low, high = item["targets"]
            space.add(CS.UniformFloatHyperparameter(name, float(low), float(high), log=item.get("log", False)))
    return space


def decoder(problem):
    """A function turning a ConfigSpace configuration back into the problem's config dict."""
    kinds = {item["args"][0]: item for item in problem.search}

    def decode(config) -> dict:
        out = {}
        for key, value in dict(config).items():
            item = kinds[key]
            out[key] = next(c[0] for c in item["targets"] if str(c[0]) == value) if item["type"] == "enum" else value
        return out

    return decode
