"""A reward for rlprompt-interp: one number per prompt, higher is better."""

TOPIC = {"film", "movie", "review", "story", "acting", "plot"}


def keywords(prompts, sentence, label, **batch):
    """Reward prompts that name what the reviews are about, and keep them short.

    prompts: the candidate prompts (list of str); sentence, label: this step's examples, one list entry each.
    """
    assert len(sentence) == len(label)  # the same examples for every prompt of the step
    scores = []
    for prompt in prompts:
        words = [word.strip(".,!?;:").lower() for word in prompt.split()]
        scores.append(sum(word in TOPIC for word in words) - 0.01 * len(prompt))
    return scores
