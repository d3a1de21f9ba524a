using System.CommandLine;

namespace Pictor.Cli;

/// <summary>'pictor completion bash|zsh': a shell script that completes verbs, options and their values by asking
/// pictor itself (System.CommandLine's [suggest] directive), so completion always matches the declared
/// options.</summary>
internal static class CompletionVerb
{
    public static Command Completion()
    {
        var shell = new Argument<string>("SHELL") { Description = "bash or zsh" };
        shell.AcceptOnlyFromAmong("bash", "zsh");
        var c = new Command("completion",
            "Print a shell completion script: eval \"$(./pictor completion bash)\"") { shell };
        c.SetAction(p =>
        {
            Console.Write(Script(p.GetValue(shell)!));
            return 0;
        });
        return c;
    }

    /// <summary>The script: it hands the line after the command name, and the cursor in it, to
    /// `pictor [suggest:N] "LINE"` and offers what comes back.
    /// The command it runs is the one the user typed (./pictor, or pictor on the PATH).</summary>
    public static string Script(string shell) => shell switch
    {
        "zsh" => """
            # pictor completion for zsh: eval "$(./pictor completion zsh)"
            _pictor_complete() {
              local -a items
              local line="${BUFFER#* }"
              items=("${(@f)$(${words[1]} "[suggest:${#line}]" "$line" 2>/dev/null)}")
              compadd -a items
            }
            compdef _pictor_complete pictor ./pictor

            """,
        _ => """
            # pictor completion for bash: eval "$(./pictor completion bash)"
            _pictor_complete() {
              local IFS=$'\n' line="${COMP_LINE#* }"   # the words after the command itself
              local point=$((COMP_POINT - ${#COMP_LINE} + ${#line}))
              COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" "[suggest:${point}]" "${line}" 2>/dev/null)" \
                -- "${COMP_WORDS[COMP_CWORD]}"))
            }
            complete -o default -F _pictor_complete pictor ./pictor

            """,
    };
}
